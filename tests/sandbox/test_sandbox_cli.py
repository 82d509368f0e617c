"""`python -m flashfx.sandbox`: the commands behind make run and make sandbox."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def run_sandbox(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SANDBOX_", "DJANGO_"))}
    env["SANDBOX_DB_PATH"] = str(db)
    return subprocess.run(
        [sys.executable, "-m", "flashfx.sandbox", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM sandbox_{table}").fetchone()[0]
            for table in ("sender", "recipient", "deposit", "apiuser")
        }


def test_seeding_twice_adds_the_demo_data_once(tmp_path):
    db = tmp_path / "sandbox.sqlite3"
    first = run_sandbox("seed", db=db)
    assert first.returncode == 0, first.stderr
    assert counts(db) == {"sender": 2, "recipient": 3, "deposit": 4, "apiuser": 1}
    second = run_sandbox("seed", db=db)
    assert second.returncode == 0, second.stderr
    assert counts(db) == {"sender": 2, "recipient": 3, "deposit": 4, "apiuser": 1}


def test_reset_wipes_and_seeds_again(tmp_path):
    db = tmp_path / "sandbox.sqlite3"
    assert run_sandbox("seed", db=db).returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM sandbox_recipient")
    result = run_sandbox("reset", db=db)
    assert result.returncode == 0, result.stderr
    assert counts(db) == {"sender": 2, "recipient": 3, "deposit": 4, "apiuser": 1}


def test_an_unknown_command_is_refused_with_usage(tmp_path):
    result = run_sandbox("fly", db=tmp_path / "sandbox.sqlite3")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
