"""Staff pages for inbound webhooks (the receiver is webhooks/views.py): the list of every
request kept, with filters and keyset pages; one event as received; and replay for admins, a
dry run first, then for real with a fresh step-up code, each replay audited.

Views parse and render: webhooks/selectors.py reads, webhooks/replay.py replays.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe
from django.views.decorators.vary import vary_on_headers

from backoffice.http import filter_query, is_fragment_request, safe_next
from backoffice.middleware import page_redirect, url_with_next
from backoffice.stepup import needs_step_up

from . import replay, selectors
from .forms import FILTER_KEYS, EventFilterForm
from .models import InboundEvent

VIEW_PERMISSION = "webhooks.view_inboundevent"
RAW_PERMISSION = "webhooks.view_raw_body"
REPLAY_MAX = 100  # events in one replay: each may call FlashFX, and the member waits
REPLAYABLE = (InboundEvent.Status.FAILED, InboundEvent.Status.DEAD)  # selectable on the list
# "Replay for real" carries the dry run's ids and the statuses it saw, signed: no real replay
# without a dry run of the very same events shortly before, and an event that moved since
# (a double submit, someone else's replay, a retry) is not replayed again.
DRY_RUN_SALT = "webhooks.replay.dry-run"
DRY_RUN_MAX_AGE = 15 * 60  # seconds


# --- The list ---------------------------------------------------------------------------------


@require_safe
@permission_required(VIEW_PERMISSION, raise_exception=True)
@vary_on_headers("HX-Request")
def events(request: HttpRequest) -> HttpResponse:
    """Newest first, filtered, a keyset page at a time; an htmx request gets the rows alone."""
    form = EventFilterForm(request.GET or None)
    page = None
    if not form.is_bound or form.is_valid():
        page = selectors.inbound_event_page(form.filters(), after=request.GET.get("after", ""))
        if not page.cursor_valid:
            messages.warning(request, "That page link was not valid; here is the first page.")
        tallies = selectors.quarantine_tallies(page.events)
        for event in page.events:
            event.tally = tallies.get(event.pk)
    context = {
        "form": form,
        "page": page,
        "filter_query": filter_query(request, FILTER_KEYS),
        "event_types": selectors.event_types(),
        "may_replay": request.user.has_perm(replay.PERMISSION),
        "replayable": REPLAYABLE,
        "fragment": is_fragment_request(request),
    }
    template = "webhooks/_event_rows.html" if context["fragment"] else "webhooks/events.html"
    return render(request, template, context)


# --- One event --------------------------------------------------------------------------------


@require_safe
@permission_required(VIEW_PERMISSION, raise_exception=True)
def event(request: HttpRequest, pk: int) -> HttpResponse:
    """One received event: what processing made of it and, for members who may see them, its
    headers and raw body as they arrived."""
    inbound = get_object_or_404(InboundEvent, pk=pk)
    context = {
        "event": inbound,
        "tally": selectors.quarantine_tallies([inbound]).get(inbound.pk),
        "may_see_raw": request.user.has_perm(RAW_PERMISSION),
        "may_replay": request.user.has_perm(replay.PERMISSION),
    }
    if context["may_see_raw"]:  # never even decoded for the others
        body = bytes(inbound.body or b"")
        try:
            text = body.decode()
        except UnicodeDecodeError:
            text = body.decode("latin-1")
        try:  # pretty-printed when it is JSON; the exact bytes are shown beside it
            pretty = json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False)
        except ValueError:
            pretty = ""
        context |= {
            "body_text": text,
            "body_kept": len(body),
            "body_pretty": pretty,
            "headers": sorted((inbound.headers or {}).items()),
        }
    return render(request, "webhooks/event.html", context)


# --- Replay -----------------------------------------------------------------------------------


def _event_ids(values: list[str]) -> list[int]:
    """Event ids from the form, in order, once each; anything that is not an id is dropped."""
    ids: list[int] = []
    for value in values:
        if value.isascii() and value.isdigit() and len(value) <= 18 and int(value) not in ids:
            ids.append(int(value))
    return ids


@require_POST
@permission_required(replay.PERMISSION, raise_exception=True)
def events_replay(request: HttpRequest) -> HttpResponse:
    """Replay the selected events: `mode=dry-run` shows what would change and changes nothing;
    `mode=apply`, sent from a dry run's page, replays for real with a fresh step-up code and
    audits each event. Back to the page the replay started from (`next`)."""
    back = safe_next(request, reverse("webhooks:events"))
    ids = _event_ids(request.POST.getlist("event"))
    if not ids:
        messages.error(request, "Select the events to replay.")
        return redirect(back)
    if len(ids) > REPLAY_MAX:
        messages.error(request, f"Replay at most {REPLAY_MAX} events at a time.")
        return redirect(back)
    if request.POST.get("mode") == "apply":
        return _replay_for_real(request, ids, back)
    results = replay.replay(event_ids=ids, dry_run=True)
    found = {r.event_id for r in results}
    missing = [i for i in ids if i not in found]
    seen = dict(InboundEvent.objects.filter(pk__in=found).values_list("pk", "status"))
    context = {
        "results": results,
        "missing": missing,
        "ids": [r.event_id for r in results],
        "any_to_replay": any(not r.outcome.startswith("skipped") for r in results),
        "token": signing.dumps(sorted(seen.items()), salt=DRY_RUN_SALT),
        "next": back,
        "step_up_needed": needs_step_up(request),
    }
    return render(request, "webhooks/replay.html", context)


def _replay_for_real(request: HttpRequest, ids: list[int], back: str) -> HttpResponse:
    try:
        dry_run = signing.loads(
            request.POST.get("token", ""), salt=DRY_RUN_SALT, max_age=DRY_RUN_MAX_AGE
        )
        seen = {int(pk): str(status) for pk, status in dry_run}
    except (signing.BadSignature, TypeError, ValueError):  # also SignatureExpired
        seen = None
    if seen is None or sorted(seen) != sorted(ids):
        messages.error(request, "Run a dry run of these events first, then replay them.")
        return redirect(back)
    if needs_step_up(request):
        # Back to where the replay started: the dry run is a POST's answer, not a page to
        # return to. The member confirms, runs the dry run again and replays.
        messages.info(request, "Confirm it is you, then run the dry run again and replay.")
        return page_redirect(request, url_with_next("step-up", back))
    results = replay.events_replay(event_ids=ids, actor=request.user, request=request, seen=seen)
    for result in results:
        text = f"#{result.event_id} {result.event or '-'}: {result.outcome}"
        if result.outcome.startswith("failed"):
            messages.error(request, text)
        elif result.outcome.startswith("skipped"):
            messages.warning(request, text)
        else:
            messages.success(request, f"Replayed {text}")
    return redirect(back)
