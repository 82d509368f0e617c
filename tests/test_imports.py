"""Imports run one way (docs/architecture.md, "Import rules"): read from the source with `ast`.

Every import counts, at the top of a module or inside a function (a lazy import hides a cycle,
it does not remove it). The rules:

- no import cycle between our modules;
- flashfx/ imports no app of ours; flashfx/sandbox/ and the back-office never import each other;
- mirrors/ imports none of backoffice/, parties/, payments/, webhooks/ (the apps fill its
  registry from their own mirrors.py);
- parties/ never imports payments/ or webhooks/; payments/ never imports webhooks/;
- inside webhooks/, views -> receiving -> tasks -> processing, and only tasks.py enqueues.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("backoffice", "mirrors", "parties", "payments", "webhooks", "flashfx")
APPS = ("backoffice", "mirrors", "parties", "payments", "webhooks")
ENQUEUE = {"delay", "apply_async", "delay_on_commit", "apply_async_on_commit", "send_task"}

# What each part may not import (a part is an app, or flashfx's client side, or the sandbox).
FORBIDDEN = {
    "flashfx": {*APPS, "flashfx.sandbox"},
    "flashfx.sandbox": {*APPS, "flashfx"},
    "mirrors": {"backoffice", "parties", "payments", "webhooks", "flashfx.sandbox"},
    "parties": {"payments", "webhooks", "flashfx.sandbox"},
    "payments": {"webhooks", "flashfx.sandbox"},
    "webhooks": {"flashfx.sandbox"},
    "backoffice": {"flashfx.sandbox"},
}
# Inside webhooks/, a module imports only modules of a lower layer.
WEBHOOK_LAYERS = {
    "webhooks.urls": 5,
    "webhooks.views": 4,
    "webhooks.staff_views": 4,
    "webhooks.admin": 4,
    "webhooks.management.commands.replay_webhooks": 4,
    "webhooks.receiving": 3,
    "webhooks.tasks": 2,
    "webhooks.processing": 1,
    "webhooks.backlog": 1,
    "webhooks.replay": 1,
    "webhooks.selectors": 1,
    "webhooks.forms": 2,
    "webhooks.silence": 1,
    "webhooks.models": 0,
    "webhooks.apps": 6,  # wires the app at start-up: ready() registers its export list
    "webhooks.exports": 3,
    "webhooks": 0,
    "webhooks.management": 0,
    "webhooks.management.commands": 0,
}
# Within the lowest working layer, the order that keeps it acyclic.
WEBHOOK_SAME_LAYER = {("webhooks.backlog", "webhooks.processing")}
WEBHOOK_SAME_LAYER |= {("webhooks.replay", "webhooks.processing")}


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


def load(root: Path, packages: tuple[str, ...]) -> dict[str, Module]:
    """Every module of the packages (migrations aside), parsed."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).with_suffix("")
            if "migrations" in relative.parts:
                continue
            parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
            name = ".".join(parts)
            modules[name] = Module(name, path, ast.parse(path.read_text(), str(path)))
    return modules


def imports(module: Module, known: dict[str, Module]) -> set[str]:
    """The modules of ours this one imports, anywhere in it."""
    found: set[str] = set()
    base = module.name if module.is_package else module.name.rpartition(".")[0]
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                source = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in known else source)
    return {name for name in found if name in known}


def graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    return {name: imports(module, modules) - {name} for name, module in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def part(name: str) -> str:
    if name == "flashfx.sandbox" or name.startswith("flashfx.sandbox."):
        return "flashfx.sandbox"
    return name.split(".")[0]


def forbidden_imports(edges: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{source} imports {target}"
        for source, targets in edges.items()
        for target in targets
        if part(target) in FORBIDDEN.get(part(source), ())
    )


def webhook_layer_breaches(edges: dict[str, set[str]]) -> list[str]:
    breaches = []
    for source, targets in edges.items():
        if part(source) != "webhooks":
            continue
        if source not in WEBHOOK_LAYERS:
            breaches.append(f"{source} has no layer in WEBHOOK_LAYERS: decide where it stands")
            continue
        for target in targets:
            if part(target) != "webhooks":
                continue
            same = WEBHOOK_LAYERS[source] == WEBHOOK_LAYERS.get(target)
            if WEBHOOK_LAYERS.get(target, 99) >= WEBHOOK_LAYERS[source] and not (
                same and (source, target) in WEBHOOK_SAME_LAYER
            ):
                breaches.append(f"{source} imports {target} (not a lower layer)")
    return sorted(breaches)


def enqueuers(modules: dict[str, Module]) -> list[str]:
    """Modules other than tasks.py that call .delay(), .apply_async() and the like."""
    return sorted(
        f"{name}:{node.lineno} .{node.func.attr}()"
        for name, module in modules.items()
        if name.rpartition(".")[2] != "tasks" and part(name) in APPS
        for node in ast.walk(module.tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ENQUEUE
    )


@pytest.fixture(scope="module")
def ours() -> dict[str, Module]:
    return load(ROOT, PACKAGES)


@pytest.fixture(scope="module")
def edges(ours) -> dict[str, set[str]]:
    return graph(ours)


def test_every_package_is_read(ours):
    assert {part(name) for name in ours} == {*PACKAGES, "flashfx.sandbox"}
    assert "webhooks.receiving" in ours and "mirrors.registry" in ours


def test_no_import_cycles(edges):
    assert cycles(edges) == []


def test_no_import_goes_the_forbidden_way(edges):
    assert forbidden_imports(edges) == []


def test_webhooks_run_views_receiving_tasks_processing(edges):
    assert webhook_layer_breaches(edges) == []


def test_only_tasks_modules_enqueue(ours):
    assert enqueuers(ours) == []


# --- The checks themselves catch what they are for ---------------------------------------------


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_cycle_through_a_lazy_relative_import_is_found(tmp_path):
    write(
        tmp_path,
        {
            "webhooks/__init__.py": "",
            "webhooks/processing.py": "def drain():\n    from . import tasks\n",
            "webhooks/tasks.py": "from webhooks import processing\n",
            "webhooks/models.py": "",
        },
    )
    edges = graph(load(tmp_path, ("webhooks",)))
    assert cycles(edges) == [["webhooks.processing", "webhooks.tasks"]]
    assert webhook_layer_breaches(edges) == [
        "webhooks.processing imports webhooks.tasks (not a lower layer)"
    ]


def test_a_forbidden_direction_and_a_stray_enqueue_are_found(tmp_path):
    write(
        tmp_path,
        {
            "mirrors/__init__.py": "",
            "mirrors/sync.py": "from payments.models import Deposit\n",
            "payments/__init__.py": "",
            "payments/models.py": "",
            "payments/services.py": "from . import tasks\ntasks.send.delay(1)\n",
            "payments/tasks.py": "",
            "flashfx/__init__.py": "",
            "flashfx/client.py": "import flashfx.sandbox.views\n",
            "flashfx/sandbox/__init__.py": "",
            "flashfx/sandbox/views.py": "",
        },
    )
    modules = load(tmp_path, ("mirrors", "payments", "flashfx"))
    assert forbidden_imports(graph(modules)) == [
        "flashfx.client imports flashfx.sandbox.views",
        "mirrors.sync imports payments.models",
    ]
    assert enqueuers(modules) == ["payments.services:2 .delay()"]
