"""Everything that speaks to FlashFX: the schema, the client (next issue) and the sandbox."""

from __future__ import annotations
