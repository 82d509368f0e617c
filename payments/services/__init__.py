"""Services of the payments app: mirrors, sync and reconciliation."""

from __future__ import annotations
