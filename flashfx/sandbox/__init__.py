"""A local simulator of the FlashFX GraphQL API.

A separate system with its own Django settings and its own SQLite database. It imports nothing
of the back-office and the back-office imports nothing of it: the two speak HTTP only.
Run it with ``python -m flashfx.sandbox serve``.
"""

from __future__ import annotations
