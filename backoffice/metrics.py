"""`/metrics`: what an operator graphs and alerts on, in Prometheus' text format.

Two kinds of figures:

- **Counters and histograms** that processes add to as things happen: HTTP requests (method,
  route, status class; durations), webhook receipts by outcome, Celery task runs by task and
  outcome (durations), FlashFX calls by operation and outcome (durations). Web runs as several
  gunicorn processes and workers run elsewhere, so with Redis every process adds to the same
  Redis hashes (one pipelined round trip per request or task) and any web process answers with
  the sum; without Redis (the embedded default) each process counts for itself, and /metrics
  shows the web process's own counts. A failing Redis never fails a request or a task: the
  figure is lost and the first failure logged, and for RETRY_AFTER_SECONDS after a failure a
  process does not try again (a Redis that is down would otherwise cost every request its
  connect timeout). `backoffice_metrics_store_up` says whether the scrape could read them.
- **Gauges read when scraped**, one grouped query each: payouts and international payments by
  state, webhook events by status, open drift items, the Celery queue's length.

The page answers only with `Authorization: Bearer <METRICS_TOKEN>`; with no METRICS_TOKEN set it
is off (404). Names start with `backoffice_`; docs/operations.md says how to read them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

log = logging.getLogger(__name__)

PREFIX = "backoffice_"
KEY = "flashfx-backoffice:metrics:"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# name -> (help, label names, kind)
COUNTERS = {
    "http_requests": ("HTTP requests answered", ("method", "route", "status")),
    "webhook_receipts": ("FlashFX webhook requests, by what was done with them", ("outcome",)),
    "task_runs": ("Celery task runs, by outcome", ("task", "outcome")),
    "flashfx_calls": ("FlashFX API calls, by operation and outcome", ("operation", "outcome")),
}
HISTOGRAMS = {
    "http_request_duration_seconds": ("Time to answer an HTTP request", ("route",)),
    "task_duration_seconds": ("Time a Celery task ran", ("task",)),
    "flashfx_call_duration_seconds": ("Time a FlashFX call took, retries included", ("operation",)),
}


# --- Recording ----------------------------------------------------------------------------------


class _Local:
    """Counts of this process alone (no Redis): {family: {field: value}}."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def add(self, updates: list[tuple[str, str, float]]) -> None:
        with self.lock:
            for family, field, amount in updates:
                self.values[family][field] += amount

    def read(self, family: str) -> dict[str, float]:
        with self.lock:
            return dict(self.values.get(family, {}))


_local = _Local()
_redis_client: Any = None
_redis_failed = False
_redis_failed_at = float("-inf")  # time.monotonic() of the last failure, in this process
RETRY_AFTER_SECONDS = 5.0


def _redis():
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5
        )
    return _redis_client


def _field(labels: Iterable[str]) -> str:
    return json.dumps(list(labels), separators=(",", ":"))


def _updates_for_observation(name: str, labels: tuple[str, ...], seconds: float):
    """Three fields per observation: its count, its sum and the one bucket it falls in (not
    every bucket above it: the scrape adds them up into Prometheus' cumulative `le` buckets),
    so an observation costs three increments in the pipeline, not fifteen."""
    base = _field(labels)
    yield name, f"{base}|count", 1.0
    yield name, f"{base}|sum", seconds
    bucket = next((str(b) for b in BUCKETS if seconds <= b), "+Inf")
    yield name, f"{base}|in={bucket}", 1.0


def _write(updates: list[tuple[str, str, float]], riders: list[Rider] | None = None) -> None:
    global _redis_failed, _redis_failed_at
    riders = riders or []
    if not settings.REDIS_URL:
        _local.add(updates)
        _settle(riders, NOT_SENT)
        return
    if time.monotonic() - _redis_failed_at < RETRY_AFTER_SECONDS:
        _settle(
            riders, None
        )  # Redis failed moments ago: lose the figure now rather than wait on it again
        return
    try:
        pipe = _redis().pipeline(transaction=False)
        for family, field, amount in updates:
            pipe.hincrbyfloat(KEY + family, field, amount)
        for rider in riders:
            rider.command(pipe)
        results = pipe.execute()
        if _redis_failed:
            log.info("metrics: Redis is back; figures are counted again")
        _redis_failed = False
    except Exception:  # a figure lost is better than a request or task failed for it
        _redis_failed_at = time.monotonic()
        if not _redis_failed:
            log.warning(
                "metrics: Redis unavailable; figures are lost (next try in %.0f s)",
                RETRY_AFTER_SECONDS,
                exc_info=True,
            )
        _redis_failed = True
        _settle(riders, NOT_SENT)
        return
    for rider, result in zip(riders, results[len(updates) :], strict=True):
        _settle([rider], result)


def _settle(riders: list[Rider], result: Any) -> None:
    """Each rider's answer; NOT_SENT when its command was not sent (it then does its own work)."""
    for rider in riders:
        try:
            rider.done(result)
        except Exception:
            log.exception("metrics: a command riding on the request's write failed afterwards")


def count(name: str, *labels: str, amount: float = 1.0) -> None:
    _write([(name, _field(labels), amount)])


REQUEST_COUNTS = "_metrics_counts"  # the request attribute counts wait in until it is answered
REQUEST_RIDERS = "_metrics_riders"  # and the Redis commands that ride with them


NOT_SENT: Any = type("NotSent", (), {"__repr__": lambda self: "NOT_SENT"})()


@dataclass(frozen=True)
class Rider:
    """A Redis command of the app's own, sent in the request's one metrics write (a round trip
    saved on the hot path), and what to do with its answer: `done(result)`, or
    `done(NOT_SENT)` when it could not be sent (no Redis, Redis failing), so that the caller
    does its own work."""

    command: Callable[[Any], Any]  # adds the command to a redis-py pipeline
    done: Callable[[Any], None]


def ride_with_request(request: HttpRequest, rider: Rider) -> None:
    """Send `rider` with the request's metrics write, when the request is answered. A request
    that did not come through MetricsMiddleware has no such write: the rider is settled at once
    with NOT_SENT."""
    riders = getattr(request, REQUEST_RIDERS, None)
    if riders is None:
        _settle([rider], NOT_SENT)
        return
    riders.append(rider)


def count_with_request(request: HttpRequest, name: str, *labels: str) -> None:
    """Count with the request's own figures: MetricsMiddleware writes them together when it
    answers, in its one round trip to Redis (the webhook receipt's outcome, on the hot path)."""
    pending = getattr(request, REQUEST_COUNTS, None)
    if pending is None:
        pending = []
        setattr(request, REQUEST_COUNTS, pending)
    pending.append((name, _field(labels), 1.0))


def record(
    counter: str,
    counter_labels: tuple[str, ...],
    histogram: str,
    hist_labels: tuple[str, ...],
    seconds: float,
    *,
    also: list[tuple[str, str, float]] | None = None,
    riders: list[Rider] | None = None,
) -> None:
    """One event counted and its duration observed (and `also`'s counts, and `riders`'
    commands), in one write."""
    updates = [(counter, _field(counter_labels), 1.0), *(also or [])]
    updates += list(_updates_for_observation(histogram, hist_labels, seconds))
    _write(updates, riders)


def _read(family: str) -> dict[str, float]:
    if not settings.REDIS_URL:
        return _local.read(family)
    raw = _redis().hgetall(KEY + family)
    return {k.decode(): float(v) for k, v in raw.items()}


# --- Where figures come from ----------------------------------------------------------------------


class MetricsMiddleware:
    """Counts every answer by method, route (the URL pattern's name, never the path: ids and
    searches would make endless series) and status class, and times it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        riders: list[Rider] = []
        setattr(request, REQUEST_RIDERS, riders)
        try:
            response = self.get_response(request)
        finally:
            # What rides from now on (an on-commit callback run after the answer, as in a
            # request-wide transaction) finds no write to join, and does its own work.
            setattr(request, REQUEST_RIDERS, None)
        match = getattr(request, "resolver_match", None)
        route = (match.view_name if match else "") or "unmatched"
        if route != "metrics":  # the scrape itself is not traffic
            record(
                "http_requests",
                (request.method or "", route, f"{response.status_code // 100}xx"),
                "http_request_duration_seconds",
                (route,),
                time.perf_counter() - started,
                also=getattr(request, REQUEST_COUNTS, None),
                riders=riders,
            )
        else:
            _settle(riders, NOT_SENT)
        return response


def flashfx_call(name: str, seconds: float, attempts: int, outcome: str) -> None:
    """flashfx/call_log.py's listener: every call the client finishes."""
    record(
        "flashfx_calls",
        (name, outcome.split(":")[0]),
        "flashfx_call_duration_seconds",
        (name,),
        seconds,
    )


_task_started: dict[str, float] = {}


def task_started(task_id: str | None = None, **kwargs: Any) -> None:
    if task_id:
        _task_started[task_id] = time.perf_counter()


def task_finished(
    task_id: str | None = None, task: Any = None, state: str | None = None, **kwargs
) -> None:
    started = _task_started.pop(task_id or "", None)
    if started is None or task is None:
        return
    outcome = (state or "unknown").lower()
    record(
        "task_runs",
        (task.name, outcome),
        "task_duration_seconds",
        (task.name,),
        time.perf_counter() - started,
    )


# --- The page -----------------------------------------------------------------------------------------


class Collector:
    def collect(self) -> Iterator[Metric]:
        stored = self._stored()
        up = GaugeMetricFamily(
            PREFIX + "metrics_store_up",
            "1 when the counters' store (Redis, or this process) could be read for this scrape",
        )
        up.add_metric([], 1 if stored is not None else 0)
        yield up
        yield from self._counters(stored or {})
        yield from self._histograms(stored or {})
        yield from self._gauges()

    def _stored(self) -> dict[str, dict[str, float]] | None:
        """Every counter and histogram family as stored; None when Redis cannot be read (the
        scrape still answers, with the gauges and metrics_store_up 0, and says so in the log)."""
        try:
            return {name: _read(name) for name in (*COUNTERS, *HISTOGRAMS)}
        except Exception as exc:
            log.warning("metrics: the counters could not be read: %s: %s", type(exc).__name__, exc)
            return None

    def _counters(self, stored: dict[str, dict[str, float]]) -> Iterator[Metric]:
        for name, (help_text, label_names) in COUNTERS.items():
            family = CounterMetricFamily(PREFIX + name, help_text, labels=label_names)
            for field, value in sorted(stored.get(name, {}).items()):
                family.add_metric(json.loads(field), value)
            yield family

    def _histograms(self, stored: dict[str, dict[str, float]]) -> Iterator[Metric]:
        for name, (help_text, label_names) in HISTOGRAMS.items():
            family = HistogramMetricFamily(PREFIX + name, help_text, labels=label_names)
            series: dict[str, dict[str, float]] = defaultdict(dict)
            for field, value in stored.get(name, {}).items():
                labels, _, part = field.rpartition("|")
                series[labels][part] = value
            for labels, parts in sorted(series.items()):
                buckets, below = [], 0.0
                for bound in BUCKETS:
                    below += parts.get(f"in={bound}", 0.0)
                    buckets.append((str(bound), below))
                buckets.append(("+Inf", parts.get("count", 0.0)))
                family.add_metric(json.loads(labels), buckets, parts.get("sum", 0.0))
            yield family

    def _gauges(self) -> Iterator[Metric]:
        from mirrors.selectors import open_drift_count
        from payments.models import PaymentOrder, Payout
        from webhooks.models import InboundEvent

        for model, name, help_text in (
            (Payout, "payouts", "Payouts by our state"),
            (PaymentOrder, "payment_orders", "International payments by our state"),
            (InboundEvent, "webhook_events", "Stored webhook requests by status"),
        ):
            label = "status" if model is InboundEvent else "state"
            family = GaugeMetricFamily(PREFIX + name, help_text, labels=[label])
            rows = model.objects.order_by().values_list(label).annotate(n=Count("id"))
            for value, n in sorted(rows):
                family.add_metric([value], n)
            yield family
        drift = GaugeMetricFamily(
            PREFIX + "drift_open_items", "Drift items waiting for a person (reconciliation)"
        )
        drift.add_metric([], open_drift_count())  # as the reconciliation page lists them
        yield drift
        queue = GaugeMetricFamily(
            PREFIX + "queue_length", "Messages waiting in Celery's queue", labels=["queue"]
        )
        from .dashboard import QUEUES, worker_queue_length

        for name in QUEUES:  # the dashboard's tile reads the same, summed
            length = worker_queue_length(queues=(name,))
            if length is not None:  # unknown: absent (and logged), never an error page
                queue.add_metric([name], length)
        yield queue


def exposition() -> bytes:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    return generate_latest(registry)
