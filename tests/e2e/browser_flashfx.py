"""What browser tests of money pages share: the sandbox as FlashFX for the live server, and a
member signed in through the real pages (password, then the authenticator's code)."""

from __future__ import annotations

import time

import pytest
from harness import close_app_client
from playwright.sync_api import Page, expect
from staff import PASSWORD, code, enrol

STEP = 30  # seconds, django-otp's TOTP step


def clear_of_step_boundary(margin: float = 4.0) -> None:
    """Sign-in and step-up codes fall in consecutive time steps only away from a boundary."""
    left = STEP - time.time() % STEP
    if left < margin:
        time.sleep(left + 0.05)


@pytest.fixture
def flashfx(live_server, sandbox, settings):
    """The sandbox as FlashFX: our client calls it, its webhooks reach the live server, and
    Celery runs tasks where they are sent. Automatic steps wait 3 s and pages poll every
    second, so each status is seen."""
    sandbox.configure(
        webhook_url=live_server.url + "/webhooks/flashfx/",
        webhook_secret=settings.FLASHFX_WEBHOOK_SECRET,
        webhook_retry_scale=0.01,
        step_delay_seconds=3,
        login_interval_seconds=0,
    )
    close_app_client()
    settings.FLASHFX_API_URL = sandbox.url
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.DEPOSIT_PAGE_POLL_SECONDS = 1
    settings.PAYOUT_PAGE_POLL_SECONDS = 1
    yield sandbox
    settings.CELERY_TASK_ALWAYS_EAGER = False
    close_app_client()


def sign_in(page: Page, base: str, user) -> object:
    """Password, then the authenticator's code: a verified session. Returns the device."""
    device = enrol(user)
    clear_of_step_boundary()
    page.goto(base + "/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    page.fill("input[name=token]", code(device))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    return device
