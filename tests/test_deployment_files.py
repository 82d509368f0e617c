"""The deployment files say what docs/operations.md promises: .env.example lists every setting,
docker-compose.yml health-checks and restarts every service and scales workers without code
changes, the Dockerfile builds a non-root image from the hashed lock with no build tools, and
`make prod-local` (Procfile.prod) runs the same commands as the compose services."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SETTING = re.compile(r'env_(?:str|int|bool|float|list|datetime)\(\s*"([A-Z0-9_]+)"')


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_env_example_lists_every_variable_the_settings_read():
    read = set(SETTING.findall((ROOT / "backoffice" / "settings.py").read_text()))
    listed = {
        line.partition("=")[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert len(read) > 50
    assert read - listed == set(), "add these to .env.example"


def test_every_service_is_health_checked_and_restarted():
    services = compose()["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "beat", "sandbox"} <= set(services)
    for name, service in services.items():
        if name == "migrate":  # runs once, before the others
            assert service["restart"] == "no" and service["healthcheck"] == {"disable": True}
            continue
        assert service["healthcheck"]["test"], name
        assert service["restart"] == "unless-stopped", name


def test_workers_scale_without_changes_and_redis_keeps_the_queue():
    services = compose()["services"]
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale worker=4
    assert worker["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    redis = " ".join(services["redis"]["command"])
    assert "--maxmemory-policy noeviction" in redis and "--appendonly yes" in redis
    assert services["sandbox"]["profiles"] == ["sandbox"]
    assert "readyz" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["beat"]["healthcheck"]["test"][-3:] == ["readiness", "--only", "beat"]


def test_the_image_is_multi_stage_non_root_and_built_from_the_hashed_lock():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]
    assert len(stages) == 2
    build, final = stages
    assert "--require-hashes" in build and "requirements-prod.lock" in build
    assert "collectstatic" in build
    assert re.search(r"^USER (?!root)\w+", final, re.MULTILINE)
    for tool in ("apt-get", "gcc", "build-essential", "pip install"):
        assert tool not in final, tool
    assert "COPY --from=build" in final


def test_prod_local_runs_the_compose_services_commands():
    procfile = {
        name.strip(): shlex.split(command)
        for name, _, command in (
            line.partition(":")
            for line in (ROOT / "Procfile.prod").read_text().splitlines()
            if line and not line.startswith("#")
        )
    }
    services = compose()["services"]
    for name in ("web", "worker", "beat"):
        ours = [Path(word).name if word.startswith(".venv/") else word for word in procfile[name]]
        theirs = services[name]["command"]
        assert ours[:4] == theirs[:4], name
