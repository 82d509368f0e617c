"""requirements.lock pins every dependency pyproject.toml names, at a version it allows, with
hashes: `make install` installs from it alone (`pip install --require-hashes`)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s\\]+)", re.MULTILINE)


def pinned() -> dict[str, str]:
    text = (ROOT / "requirements.lock").read_text()
    return {canonicalize_name(name): version for name, version in PIN.findall(text)}


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = project["dependencies"] + project["optional-dependencies"]["test"]
    return [Requirement(line) for line in names]


def test_every_declared_dependency_is_pinned_at_a_version_pyproject_allows():
    pins = pinned()
    wrong = []
    for requirement in declared():
        version = pins.get(canonicalize_name(requirement.name))
        if version is None:
            wrong.append(f"{requirement.name}: not in requirements.lock")
        elif not requirement.specifier.contains(version, prereleases=True):
            wrong.append(f"{requirement.name}=={version} outside {requirement.specifier}")
    assert not wrong, "run `make lock`:\n" + "\n".join(wrong)


def test_every_pin_carries_a_hash():
    blocks = re.split(r"\n(?=[A-Za-z0-9._-]+==)", (ROOT / "requirements.lock").read_text())
    unhashed = [b.split()[0] for b in blocks if PIN.match(b) and "--hash=sha256:" not in b]
    assert not unhashed
    assert len(pinned()) > 40  # the whole tree, not only the direct dependencies


def test_the_image_lock_pins_the_same_versions_without_the_test_tools():
    """requirements-prod.lock (the Docker image) is the runtime part of requirements.lock."""
    text = (ROOT / "requirements-prod.lock").read_text()
    image = {canonicalize_name(name): version for name, version in PIN.findall(text)}
    everything = pinned()
    assert {name: everything.get(name) for name in image} == image
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        assert canonicalize_name(Requirement(line).name) in image
    for tool in ("pytest", "playwright", "ruff", "hypothesis"):
        assert tool not in image
    blocks = re.split(r"\n(?=[A-Za-z0-9._-]+==)", text)
    assert all("--hash=sha256:" in b for b in blocks if PIN.match(b))
