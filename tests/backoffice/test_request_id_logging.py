"""One request id ties a request's log records to those of the tasks it publishes, and
LOG_FORMAT=json writes each record as one JSON object (backoffice/log.py)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from celery import Celery, shared_task
from django.urls import path

from backoffice import log
from backoffice.log import REQUEST_ID_HEADER, current_request_id, request_id_bound
from backoffice.middleware import public

BASE_DIR = Path(__file__).resolve().parents[2]
seen: list[str] = []


@shared_task
def note_request_id() -> str:
    logging.getLogger("tests.request_id").info("in the task")
    return current_request_id()


def noting_view(request):
    from django.http import JsonResponse

    logging.getLogger("tests.request_id").info("in the view")
    return JsonResponse({"request_id": current_request_id()})


urlpatterns = [path("noting/", public(noting_view))]


@pytest.fixture
def records():
    """Records as the configured console handler sees them (with its request-id filter)."""
    caught: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            caught.append(record)

    handler = Keep()
    handler.addFilter(log.RequestIdFilter())
    logger = logging.getLogger("tests.request_id")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield caught
    logger.removeHandler(handler)


@pytest.mark.urls(__name__)
def test_a_request_gets_an_id_answered_and_put_on_its_records(client, records):
    response = client.get("/noting/")
    rid = response[REQUEST_ID_HEADER]
    assert len(rid) == 32 and response.json() == {"request_id": rid}
    assert [r.request_id for r in records] == [rid]
    assert current_request_id() == "-"  # nothing leaks past the request
    other = client.get("/noting/")[REQUEST_ID_HEADER]
    assert other != rid


@pytest.mark.urls(__name__)
def test_a_proxys_sane_request_id_is_kept_and_anything_else_replaced(client):
    kept = client.get("/noting/", headers={REQUEST_ID_HEADER: "lb-7f3a9c21d0e4"})
    assert kept[REQUEST_ID_HEADER] == "lb-7f3a9c21d0e4"
    for bad in ("short", "x" * 65, "id with spaces", "id\nInjected: line"):
        replaced = client.get("/noting/", headers={REQUEST_ID_HEADER: bad})[REQUEST_ID_HEADER]
        assert replaced != bad and len(replaced) == 32


def test_a_task_published_in_a_request_carries_its_id_to_the_worker(records):
    app = Celery("carrier", broker="memory://", set_as_current=False)
    with request_id_bound("req-carried-0001"), app.connection_for_write() as conn:
        app.send_task("tests.note", connection=conn)
        message = conn.SimpleQueue("celery").get(timeout=5)
    assert message.headers["request_id"] == "req-carried-0001"
    # The worker side: the task runs with the id from its message's headers.
    result = note_request_id.apply(headers={"request_id": "req-carried-0001"})
    assert result.get() == "req-carried-0001"
    assert records[-1].request_id == "req-carried-0001"
    assert current_request_id() == "-"


def test_an_eager_task_keeps_its_callers_id():
    with request_id_bound("req-eager-000001"):
        assert note_request_id.apply().get() == "req-eager-000001"


def test_json_logs_are_one_object_per_line_with_the_request_id_and_the_exception():
    script = (
        "import django, logging; django.setup();"
        "from backoffice.log import request_id_bound;"
        "log = logging.getLogger('payments.demo')\n"
        "with request_id_bound('req-json-000001'):\n"
        "    log.warning('payout %s sent', 'P-1')\n"
        "    try:\n"
        "        1 / 0\n"
        "    except ZeroDivisionError:\n"
        "        log.exception('it broke')\n"
    )
    env = {**os.environ, "DEBUG": "true", "LOG_FORMAT": "json"}
    env["DJANGO_SETTINGS_MODULE"] = "backoffice.settings"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    first, second = lines[-2:]
    assert first["level"] == "WARNING" and first["logger"] == "payments.demo"
    assert first["message"] == "payout P-1 sent" and first["request_id"] == "req-json-000001"
    assert first["time"].endswith("+00:00")
    assert second["level"] == "ERROR" and "ZeroDivisionError" in second["exc_info"]


def test_a_worker_logs_through_the_same_json_handler(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"DEBUG": "true", "LOG_FORMAT": "json", "VAR_DIR": str(tmp_path)}
    celery = str(Path(sys.executable).with_name("celery"))
    worker = subprocess.Popen(
        [celery, "-A", "backoffice", "worker", "--loglevel=INFO", "--concurrency=1"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        for line in worker.stdout:
            lines.append(line)
            if " ready." in line:
                break
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    ready = json.loads(lines[-1])
    assert ready["message"].endswith(" ready.") and ready["logger"] == "celery.apps.worker"
    assert ready["level"] == "INFO" and ready["request_id"] == "-"
