"""/readyz: the database, Redis, the broker, FlashFX and beat, each checked and timed; one
failing makes the answer 503 with its name and reason."""

from __future__ import annotations

import json
import socket
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.utils import timezone

from backoffice import readiness
from backoffice.models import Heartbeat
from backoffice.tasks import beat_heartbeat

pytestmark = pytest.mark.django_db


@pytest.fixture
def flashfx_up(sandbox, settings):
    settings.FLASHFX_API_URL = sandbox.url
    return sandbox


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"  # closed once the socket is


def test_ready_when_everything_answers_and_beat_was_seen(client, flashfx_up):
    beat_heartbeat.apply()  # what beat schedules every READY_HEARTBEAT_SECONDS
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok" and body["failed"] == []
    assert set(body["checks"]) == {"database", "redis", "broker", "flashfx", "beat"}
    assert all(c["ok"] and c["ms"] >= 0 for c in body["checks"].values())
    expected_redis = "ok" if settings.REDIS_URL else "not used (no REDIS_URL)"
    assert body["checks"]["redis"]["detail"] == expected_redis
    assert "no-store" in response["Cache-Control"]


def test_not_ready_without_a_heartbeat_from_beat(client, flashfx_up):
    body = client.get("/readyz").json()
    assert body["failed"] == ["beat"]
    assert "no heartbeat yet" in body["checks"]["beat"]["detail"]


def test_not_ready_when_the_last_heartbeat_is_stale(client, flashfx_up, settings):
    settings.READY_BEAT_STALE_SECONDS = 60
    Heartbeat.objects.create(name="beat", seen_at=timezone.now() - timedelta(seconds=61))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "last heartbeat 61 s ago" in response.json()["checks"]["beat"]["detail"]


def test_not_ready_when_flashfx_does_not_answer(client, settings, caplog):
    settings.FLASHFX_API_URL = closed_port_url()
    beat_heartbeat.apply()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["flashfx"]
    assert "ConnectError" in response.json()["checks"]["flashfx"]["detail"]
    assert "readyz: not ready: flashfx" in caplog.text


def test_not_ready_when_redis_does_not_answer(client, flashfx_up, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    beat_heartbeat.apply()
    body = client.get("/readyz").json()
    assert body["failed"] == ["redis"]


def test_not_ready_when_the_database_fails(client, flashfx_up, monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise OperationalError("database is down")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert {"database", "beat"} <= set(response.json()["failed"])
    assert "database is down" in response.json()["checks"]["database"]["detail"]


def test_beat_schedules_the_heartbeat_often_enough_to_stay_fresh():
    entry = settings.CELERY_BEAT_SCHEDULE["beat-heartbeat"]
    assert entry["task"] == beat_heartbeat.name
    assert entry["schedule"] < settings.READY_BEAT_STALE_SECONDS / 2
    assert readiness.BEAT == "beat"


def test_the_readiness_command_checks_only_what_it_is_asked_and_exits_1_on_a_failure(capsys):
    """Compose's health check of beat (docker-compose.yml): `manage.py readiness --only beat`."""
    from django.core.management import call_command

    with pytest.raises(SystemExit) as stale:
        call_command("readiness", "--only", "beat")
    assert stale.value.code == 1
    assert list(json.loads(capsys.readouterr().out)) == ["beat"]

    beat_heartbeat.apply()
    call_command("readiness", "--only", "beat", "database")  # no exit: all passed
    checks = json.loads(capsys.readouterr().out)
    assert list(checks) == ["database", "beat"] and all(c["ok"] for c in checks.values())


def test_beat_sends_a_heartbeat_as_it_starts(monkeypatch):
    """So a fresh deployment is ready as soon as a worker has run it, not an interval later."""
    from celery.signals import beat_init

    from mirrors.tasks import sync_flashfx

    sent = []
    monkeypatch.setattr(beat_heartbeat, "delay", lambda: sent.append("heartbeat"))
    monkeypatch.setattr(sync_flashfx, "delay", lambda: sent.append("sync"))
    beat_init.send(sender=None)
    assert sorted(sent) == ["heartbeat", "sync"]
