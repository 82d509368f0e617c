"""Browser tests: Playwright for Python driving Debian's Chromium against pytest-django's live_server.

- One Chromium serves every test of this directory. It starts with the first test here and stops
  after the last one, so the rest of the run never sees Playwright's event loop (see _Chromium).
- Without /usr/bin/chromium the directory is skipped, with the reason, on a developer machine;
  in CI (CI=true) every test here fails instead: a browser-less CI must not pass silently.
- Each test gets a fresh context (no cookies) at 1280x800. `watch` collects what must stay empty:
  CSP violations (the `securitypolicyviolation` events and the console's CSP messages), console
  errors and uncaught page errors. `shot("step")` saves a full-page screenshot to
  tests/e2e/screenshots/<test>-<step>.png (gitignored); a failing test gets one more.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from browser_flashfx import flashfx  # noqa: F401 (the sandbox as FlashFX, for tests of money pages)
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
HERE = Path(__file__).resolve().parent
SCREENSHOTS = HERE / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}

# Runs before any script of every document: reports each CSP violation to the test.
REPORT_CSP = """
document.addEventListener("securitypolicyviolation", (e) => window.__reportCsp({
  directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile,
  line: e.lineNumber, sample: e.sample, page: document.location.href,
}));
"""


def _in_e2e(item: pytest.Item | None) -> bool:
    return item is not None and HERE in Path(item.path).resolve().parents


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM.exists() or _in_ci():
        return  # in CI a missing browser fails each test (the browser fixture), never skips
    skip = pytest.mark.skip(
        reason=f"browser tests need Chromium at {CHROMIUM}: apt-get install -y chromium"
    )
    for item in items:
        if _in_e2e(item):
            item.add_marker(skip)


class _Chromium:
    """The one Chromium (and Playwright driver) of a run of e2e tests.

    While sync_playwright() runs, the test thread counts as inside an asyncio event loop, and
    Django refuses ORM calls there (SynchronousOnlyOperation) unless DJANGO_ALLOW_ASYNC_UNSAFE
    is set. Both last only from the first e2e test to the last one: the next test elsewhere runs
    as if no browser had ever started.
    """

    def __init__(self) -> None:
        self.playwright = None
        self.browser: Browser | None = None
        self.saved_env: str | None = None

    def get(self) -> Browser:
        if self.browser is None:
            if not CHROMIUM.exists():
                pytest.fail(
                    f"CI=true and there is no Chromium at {CHROMIUM}: the browser tests cannot "
                    "run. Install it (apt-get install -y chromium) before the tests.",
                    pytrace=False,
                )
            self.saved_env = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
            self.playwright = sync_playwright().start()
            self.browser = self.playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
        return self.browser

    def stop(self) -> None:
        if self.playwright is None:
            return
        try:
            if self.browser is not None:
                self.browser.close()
            self.playwright.stop()
        finally:
            self.browser = self.playwright = None
            if self.saved_env is None:
                os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
            else:
                os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = self.saved_env


_CHROMIUM = _Chromium()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    yield  # the test's own fixtures (its context, its transactional database) are gone now
    if _in_e2e(item) and not _in_e2e(nextitem):
        _CHROMIUM.stop()


def pytest_sessionfinish(session: pytest.Session) -> None:
    _CHROMIUM.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"e2e_report_{report.when}", report)


@pytest.fixture(scope="session")
def browser_factory() -> Callable[[], Browser]:
    """Session-wide access to the shared Chromium (started on first use)."""
    return _CHROMIUM.get


@pytest.fixture
def browser(browser_factory: Callable[[], Browser]) -> Browser:
    """The shared Chromium: one browser process for every e2e test of the run."""
    return browser_factory()


@pytest.fixture(autouse=True)
def _roles(transactional_db) -> None:
    """The role groups, as migrations leave them.

    live_server needs a transactional database, which is flushed after each test; Django's
    flush emits post_migrate (so ensure_roles runs again), but a test elsewhere that limits
    available_apps would skip that. ensure_roles() is idempotent and quick.
    """
    from backoffice.roles import ensure_roles

    ensure_roles()


@dataclass
class Watch:
    """What the browser reported during a test; every list must end up empty."""

    csp_violations: list[dict] = field(default_factory=list)
    csp_console: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def on_violation(self, violation: dict) -> None:
        self.csp_violations.append(violation)

    def on_console(self, message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text:
            self.csp_console.append(text)
        elif message.type == "error":
            where = message.location.get("url", "")
            self.console_errors.append(f"{text} ({where})" if where else text)

    def problems(self) -> list[str]:
        return (
            [f"CSP violation: {v}" for v in self.csp_violations]
            + [f"CSP console message: {m}" for m in self.csp_console]
            + [f"console error: {m}" for m in self.console_errors]
            + [f"page error: {m}" for m in self.page_errors]
        )

    def expect_console_error(self, pattern: str) -> None:
        """Take out exactly one console error matching `pattern`, which the test expected."""
        matching = [m for m in self.console_errors if re.search(pattern, m)]
        assert len(matching) == 1, (
            f"expected one console error like {pattern!r}: {self.console_errors}"
        )
        self.console_errors.remove(matching[0])

    def assert_clean(self, page: Page | None = None) -> None:
        if page is not None:
            page.wait_for_timeout(150)  # violation events arrive asynchronously
        assert not self.problems(), "\n".join(self.problems())


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def context(browser: Browser, watch: Watch) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(10_000)
    context.expose_function("__reportCsp", watch.on_violation)
    context.add_init_script(REPORT_CSP)
    yield context
    context.close()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Iterator[Callable[..., Path]]:
    """shot("step") saves the page's full-page screenshot as screenshots/<test>-<step>.png."""
    SCREENSHOTS.mkdir(exist_ok=True)
    test = _slug(request.node.name)
    for old in SCREENSHOTS.glob(f"{test}-*.png"):
        old.unlink()
    page = request.getfixturevalue("page")

    def take(step: str, target: Page | None = None) -> Path:
        path = SCREENSHOTS / f"{test}-{_slug(step)}.png"
        (target or page).screenshot(path=str(path), full_page=True)
        return path

    yield take
    failed = getattr(request.node, "e2e_report_call", None)
    if failed is not None and failed.failed and not page.is_closed():
        take("failure")


@pytest.fixture
def page(context: BrowserContext, watch: Watch, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A new page whose console and CSP reports go to `watch`; checked again after the test."""
    page = context.new_page()
    page.on("console", watch.on_console)
    page.on("pageerror", lambda error: watch.page_errors.append(str(error)))
    yield page
    call = getattr(request.node, "e2e_report_call", None)
    if call is not None and call.passed and not page.is_closed():
        watch.assert_clean(page)
