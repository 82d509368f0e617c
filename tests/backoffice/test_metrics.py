"""/metrics: Prometheus' text format behind a bearer token; requests, webhook receipts, task
runs and FlashFX calls counted as they happen (in Redis when there is one, so every process's
counts add up), and payouts, payments, webhook events, drift and the queue read when scraped."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.http import HttpResponse
from prometheus_client.parser import text_string_to_metric_families
from staff import make_staff, sign_in

from backoffice import metrics
from backoffice.tasks import beat_heartbeat
from mirrors.client import flashfx_client
from payments.models import Payout
from webhooks.models import InboundEvent

pytestmark = pytest.mark.django_db
TOKEN = "a-long-metrics-token-for-tests"
BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_counts(settings):
    """Each test counts from zero: its own Redis keys, or a fresh in-process store."""
    settings.METRICS_TOKEN = TOKEN
    prefix = metrics.KEY
    metrics.KEY = f"{prefix}test-{os.getpid()}:"
    metrics._local = metrics._Local()
    metrics._redis_client = None
    metrics._redis_failed, metrics._redis_failed_at = False, float("-inf")
    redis_url = settings.REDIS_URL  # a test may point it elsewhere
    yield
    metrics._redis_client = None
    metrics._redis_failed, metrics._redis_failed_at = False, float("-inf")
    if redis_url:
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=metrics.KEY + "*"):
            client.delete(key)
    metrics.KEY = prefix


def scrape(client) -> dict[str, list]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert "no-store" in response["Cache-Control"]
    families = text_string_to_metric_families(response.content.decode())
    return {f.name: f.samples for f in families}


def value(samples, name: str, **labels) -> float:
    return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())


def test_off_without_a_token_and_refused_with_a_wrong_one(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404
    settings.METRICS_TOKEN = TOKEN
    missing = client.get("/metrics")
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401


def test_requests_are_counted_by_route_and_status_class_and_timed(client):
    sign_in(client, make_staff("viewer"))
    client.get("/")
    client.get("/")
    client.get("/payouts/no-such-code/")
    families = scrape(client)
    requests = families["backoffice_http_requests"]
    assert value(requests, "backoffice_http_requests_total", route="dashboard", status="2xx") == 2
    assert (
        value(requests, "backoffice_http_requests_total", route="payments:payout", status="4xx")
        == 1
    )
    durations = families["backoffice_http_request_duration_seconds"]
    assert (
        value(durations, "backoffice_http_request_duration_seconds_count", route="dashboard") == 2
    )
    assert (
        value(
            durations,
            "backoffice_http_request_duration_seconds_bucket",
            route="dashboard",
            le="+Inf",
        )
        == 2
    )
    # The scrape itself is not traffic.
    assert not [s for s in requests if s.labels.get("route") == "metrics"]


def test_a_histogram_adds_its_buckets_up_as_prometheus_reads_them(client):
    for seconds in (0.003, 0.02, 0.7, 45.0):
        metrics.record("task_runs", ("t", "success"), "task_duration_seconds", ("t",), seconds)
    samples = scrape(client)["backoffice_task_duration_seconds"]
    le = {
        s.labels["le"]: s.value
        for s in samples
        if s.name == "backoffice_task_duration_seconds_bucket" and s.labels["task"] == "t"
    }
    assert (le["0.005"], le["0.01"], le["0.025"], le["0.5"], le["1.0"], le["30.0"]) == (
        1,
        1,
        2,
        2,
        3,
        3,
    )
    assert le["+Inf"] == 4
    assert value(samples, "backoffice_task_duration_seconds_sum", task="t") == pytest.approx(45.723)


def test_webhook_receipts_by_outcome(client):
    client.post("/webhooks/flashfx/", data=b"{}", content_type="application/json")  # unsigned
    samples = scrape(client)["backoffice_webhook_receipts"]
    assert value(samples, "backoffice_webhook_receipts_total", outcome="missing_signature") == 1


def test_task_runs_by_outcome_and_duration(client):
    beat_heartbeat.apply()
    families = scrape(client)
    runs = families["backoffice_task_runs"]
    assert (
        value(
            runs,
            "backoffice_task_runs_total",
            task="backoffice.tasks.beat_heartbeat",
            outcome="success",
        )
        == 1
    )
    durations = families["backoffice_task_duration_seconds"]
    assert (
        value(
            durations,
            "backoffice_task_duration_seconds_count",
            task="backoffice.tasks.beat_heartbeat",
        )
        == 1
    )


def test_flashfx_calls_by_operation_and_outcome(client, sandbox, settings):
    settings.FLASHFX_API_URL = sandbox.url
    # A token of its own: with Redis, an earlier test of this worker may have left one for this
    # sandbox, and then there would be no login to count.
    settings.FLASHFX_TOKEN_KEY = f"flashfx:token:test-metrics-{os.getpid()}"
    flashfx_client.cache_clear()
    try:
        flashfx_client().balances()
    finally:
        flashfx_client().close()
        flashfx_client.cache_clear()
        if settings.REDIS_URL:
            redis.Redis.from_url(settings.REDIS_URL).delete(
                settings.FLASHFX_TOKEN_KEY, f"{settings.FLASHFX_TOKEN_KEY}:login-lock"
            )
    families = scrape(client)
    calls = families["backoffice_flashfx_calls"]
    assert value(calls, "backoffice_flashfx_calls_total", operation="Balances", outcome="ok") == 1
    assert value(calls, "backoffice_flashfx_calls_total", operation="Login", outcome="ok") == 1
    durations = families["backoffice_flashfx_call_duration_seconds"]
    assert (
        value(durations, "backoffice_flashfx_call_duration_seconds_count", operation="Balances")
        == 1
    )


def test_payouts_and_webhook_events_by_state_are_the_rows(client, sandbox, settings):
    sys.path.insert(0, str(BASE_DIR / "tests" / "payments"))
    from payout_support import propose, recipient_at_flashfx, sender_at_flashfx
    from refund_support import app_at

    with app_at(sandbox, settings):
        recipient, sender = recipient_at_flashfx(), sender_at_flashfx()
        maker = make_staff("operator")
        for amount in ("10.00", "20.00"):
            propose(maker, recipient=recipient, sender=sender, amount=amount)
    for n, status in enumerate(("processed", "processed", "dead")):
        InboundEvent.objects.create(
            accepted=True,
            request_id=f"req-{n}",
            status=status,
            body_sha256="0" * 64,
            body_size=0,
            headers={},
        )
    families = scrape(client)
    payouts = families["backoffice_payouts"]
    assert {s.labels["state"]: s.value for s in payouts} == {Payout.State.AWAITING_APPROVAL: 2.0}
    events = families["backoffice_webhook_events"]
    assert {s.labels["status"]: s.value for s in events} == {"processed": 2.0, "dead": 1.0}
    assert sum(Decimal(s.value) for s in payouts) == Payout.objects.count()


def test_the_queue_length_and_open_drift_are_read_when_scraped(client):
    families = scrape(client)
    assert "backoffice_drift_open_items" in families
    assert value(families["backoffice_drift_open_items"], "backoffice_drift_open_items") == 0
    queue = families["backoffice_queue_length"]
    assert [s.labels for s in queue] == [{"queue": "celery"}]


@pytest.mark.skipif(
    not django_settings.REDIS_URL, reason="counts add up across processes with Redis"
)
def test_counts_from_another_process_add_up(client):
    """A worker's count (another process) is in any web process's answer."""
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'backoffice.settings');"
        "django.setup(); from backoffice import metrics;"
        f"metrics.KEY = {metrics.KEY!r};"
        "metrics.count('webhook_receipts', 'received', amount=3)"
    )
    subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, check=True, env=os.environ | {"DEBUG": "true"}
    )
    metrics.count("webhook_receipts", "received")
    samples = scrape(client)["backoffice_webhook_receipts"]
    assert value(samples, "backoffice_webhook_receipts_total", outcome="received") == 4


def a_port_nobody_listens_on() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_redis_that_is_down_costs_requests_nothing_and_the_scrape_says_so(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{a_port_nobody_listens_on()}/0"
    sign_in(client, make_staff("viewer"))
    assert client.get("/").status_code == 200  # counted: lost, and the page answers
    assert metrics._redis_failed
    samples = scrape(client)
    assert value(samples["backoffice_metrics_store_up"], "backoffice_metrics_store_up") == 0
    assert samples["backoffice_http_requests"] == []  # nothing could be read, nothing made up
    assert "backoffice_payouts" in samples  # the gauges read from the database still answer


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="counting again once Redis is back")
def test_after_a_failure_a_process_waits_before_trying_redis_again(client, settings):
    live = settings.REDIS_URL
    settings.REDIS_URL = f"redis://127.0.0.1:{a_port_nobody_listens_on()}/0"
    metrics.count("webhook_receipts", "received")  # fails: Redis is down
    settings.REDIS_URL, metrics._redis_client = live, None  # Redis is back
    metrics.count("webhook_receipts", "received")  # within the wait: not even tried
    samples = scrape(client)
    assert value(samples["backoffice_metrics_store_up"], "backoffice_metrics_store_up") == 1
    assert value(samples["backoffice_webhook_receipts"], "backoffice_webhook_receipts_total") == 0
    metrics._redis_failed_at -= metrics.RETRY_AFTER_SECONDS  # the wait is over
    metrics.count("webhook_receipts", "received")
    samples = scrape(client)["backoffice_webhook_receipts"]
    assert value(samples, "backoffice_webhook_receipts_total", outcome="received") == 1


# --- Commands that ride with a request's write (metrics.Rider) ---------------------------------


def riding_view(answers: list, key: str):
    """A view that sends one SET with its request's metrics write."""

    def view(request):
        metrics.ride_with_request(
            request,
            metrics.Rider(command=lambda pipe: pipe.set(key, b"1"), done=answers.append),
        )
        return HttpResponse("ok")

    return view


def test_a_rider_goes_in_the_requests_one_write_and_hears_its_answer(
    rf, settings, claimed_redis_url
):
    settings.REDIS_URL = claimed_redis_url
    key, answers = f"rider-test-{os.getpid()}", []
    store = redis.Redis.from_url(settings.REDIS_URL)
    store.delete(key)
    middleware = metrics.MetricsMiddleware(riding_view(answers, key))

    middleware(rf.get("/"))

    assert answers == [True]
    assert store.get(key) == b"1"
    store.delete(key)


def test_a_rider_with_no_write_to_join_is_told_it_was_not_sent(rf, settings, claimed_redis_url):
    settings.REDIS_URL = claimed_redis_url
    answers: list = []
    riding_view(answers, "never-set")(rf.get("/"))  # no MetricsMiddleware: no write to join
    assert answers == [metrics.NOT_SENT]

    settings.REDIS_URL = f"redis://127.0.0.1:{a_port_nobody_listens_on()}/0"  # Redis is down
    metrics.MetricsMiddleware(riding_view(answers, "never-set"))(rf.get("/"))
    assert answers == [metrics.NOT_SENT, metrics.NOT_SENT]

    settings.REDIS_URL = ""  # the embedded default: counted in the process, nothing to send
    metrics.MetricsMiddleware(riding_view(answers, "never-set"))(rf.get("/"))
    assert answers == [metrics.NOT_SENT] * 3


def test_a_rider_that_arrives_after_the_answer_is_not_left_waiting(rf, settings, claimed_redis_url):
    """An on-commit callback of a request-wide transaction runs after the answer."""
    settings.REDIS_URL = claimed_redis_url
    late: list = []
    request = rf.get("/")
    metrics.MetricsMiddleware(lambda r: HttpResponse("ok"))(request)

    metrics.ride_with_request(request, metrics.Rider(command=lambda pipe: None, done=late.append))

    assert late == [metrics.NOT_SENT]
