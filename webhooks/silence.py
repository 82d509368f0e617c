"""Webhook silence: changes sync found that no webhook ever reported (FlashFX gave up on us, or
our endpoint is unreachable), checked once a sync run's silence period has passed."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from mirrors.models import SyncRun

from .models import InboundEvent

log = logging.getLogger(__name__)


def silence_alerts(*, minutes: int | None = None) -> list[dict[str, Any]]:
    """Changes sync found that no webhook reported: FlashFX gave up, or our endpoint is unreachable.

    A sync run's changes are checked once the silence period has passed since it ran: an
    entity with no webhook received from shortly before the run until now is reported (and
    sync has already brought the mirror up to date). Only incremental runs say anything about
    webhooks: a backfill (`full`, the very first sync among them) finds history that was never
    meant to arrive by webhook, so it is marked checked without an alert.
    """
    period = timedelta(
        minutes=minutes if minutes is not None else settings.FLASHFX_WEBHOOK_SILENCE_MINUTES
    )
    now = timezone.now()
    due = SyncRun.objects.filter(
        status=SyncRun.Status.SUCCEEDED, silence_checked_at=None, finished_at__lt=now - period
    )
    # Nothing to check: marked once, so that the due list does not grow with every run.
    due.filter(Q(mode="full") | Q(changed_ids=[])).update(silence_checked_at=now, silent_ids=[])
    alerts = []
    for run in due.exclude(mode="full").exclude(changed_ids=[]):
        heard = set(
            InboundEvent.objects.filter(
                accepted=True,
                entity_id__in=run.changed_ids,
                received_at__gte=run.started_at - period,
            ).values_list("entity_id", flat=True)
        )
        silent = [i for i in run.changed_ids if i not in heard]
        if silent:
            log.error(
                "ALERT webhook silence: sync %s found %d change(s) of %s that no webhook reported: %s",
                run.pk,
                len(silent),
                run.entity,
                silent[:20],
            )
            alerts.append({"sync_run": run.pk, "entity": run.entity, "flashfx_ids": silent})
        SyncRun.objects.filter(pk=run.pk).update(silence_checked_at=now, silent_ids=silent)
    return alerts
