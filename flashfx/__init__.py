"""Everything that speaks to FlashFX: the schema, the operations, the client and the sandbox."""

from __future__ import annotations
