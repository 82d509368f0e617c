from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from backoffice.settings import env_bool

BASE_DIR = Path(__file__).resolve().parents[2]
REQUIRED_WHEN_DEBUG_OFF = (
    "SECRET_KEY",
    "FLASHFX_API_URL",
    "FLASHFX_EMAIL",
    "FLASHFX_PASSWORD",
    "FLASHFX_WEBHOOK_SECRET",
    "AUDIT_HMAC_KEY",
)


def run_django(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `code` after django.setup() in a fresh interpreter with only the given environment."""
    clean_env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
        "VAR_DIR": str(tmp_path / "var"),
    }
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{code}"],
        cwd=BASE_DIR,
        env=clean_env | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_debug_off_start_up_names_every_missing_variable(tmp_path):
    result = run_django("", tmp_path, DEBUG="false")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    for name in REQUIRED_WHEN_DEBUG_OFF:
        assert name in result.stderr


def test_debug_off_starts_when_everything_required_is_given(tmp_path):
    given = dict.fromkeys(REQUIRED_WHEN_DEBUG_OFF, "x")
    result = run_django("", tmp_path, DEBUG="false", ALLOWED_HOSTS="backoffice.example", **given)
    assert result.returncode == 0, result.stderr


def test_secret_can_come_from_a_file(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file\n")
    code = "from django.conf import settings; print(settings.FLASHFX_WEBHOOK_SECRET)"
    result = run_django(code, tmp_path, DEBUG="true", FLASHFX_WEBHOOK_SECRET_FILE=str(secret_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "from-a-file"


@pytest.mark.parametrize(
    ("raw", "expected"), [("true", True), ("FALSE", False), ("1", True), ("0", False)]
)
def test_env_bool_accepts_true_false_and_1_0(monkeypatch, raw, expected):
    monkeypatch.setenv("BACKOFFICE_TEST_FLAG", raw)
    assert env_bool("BACKOFFICE_TEST_FLAG", default=not expected) is expected


def test_env_bool_rejects_anything_else(monkeypatch):
    monkeypatch.setenv("BACKOFFICE_TEST_FLAG", "yes-please")
    with pytest.raises(ImproperlyConfigured, match="BACKOFFICE_TEST_FLAG"):
        env_bool("BACKOFFICE_TEST_FLAG", default=False)


@pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL")), reason="DATABASE_URL selects another database"
)
def test_embedded_default_is_sqlite_in_wal_mode_with_immediate_transactions(tmp_path):
    code = (
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    for pragma in ('journal_mode', 'synchronous', 'busy_timeout'):\n"
        "        print(cursor.execute(f'PRAGMA {pragma}').fetchone()[0])\n"
        "print(connection.vendor, connection.transaction_mode, connection.settings_dict['NAME'])\n"
    )
    result = run_django(code, tmp_path, DEBUG="true")
    assert result.returncode == 0, result.stderr
    journal_mode, synchronous, busy_timeout, summary = result.stdout.splitlines()
    assert journal_mode == "wal"
    assert synchronous == "1"  # NORMAL
    assert busy_timeout == "5000"
    assert summary == f"sqlite IMMEDIATE {tmp_path / 'var' / 'db.sqlite3'}"


@pytest.mark.skipif(not os.environ.get("DATABASE_URL"), reason="DATABASE_URL is not set")
@pytest.mark.django_db
def test_database_url_selects_postgresql():
    assert connection.settings_dict["ENGINE"] == "django.db.backends.postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_a_webhook_allow_list_entry_that_is_not_a_network_stops_start_up(tmp_path):
    result = run_django(
        "", tmp_path, DEBUG="true", FLASHFX_WEBHOOK_ALLOWED_IPS="uat,52.64.0.0/16,not-an-ip"
    )
    assert result.returncode != 0
    assert "FLASHFX_WEBHOOK_ALLOWED_IPS: 'not-an-ip'" in result.stderr


def test_webhook_allow_list_presets_and_networks_are_accepted(tmp_path):
    result = run_django(
        "", tmp_path, DEBUG="true", FLASHFX_WEBHOOK_ALLOWED_IPS="uat, production, 10.0.0.0/8"
    )
    assert result.returncode == 0, result.stderr
