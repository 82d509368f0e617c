"""Reads of the parties' mirrors that other code needs."""

from __future__ import annotations

from collections.abc import Iterable

from .models import SubClient


def sub_client_pks(*, flashfx_ids: Iterable[str | None]) -> dict[str, int]:
    """The local keys of the mirrored sub-clients among these FlashFX ids (one query)."""
    wanted = {i for i in flashfx_ids if i}
    if not wanted:
        return {}
    return dict(SubClient.objects.filter(flashfx_id__in=wanted).values_list("flashfx_id", "pk"))
