"""A member's first sign-in in a real browser: password, authenticator enrolment, backup codes,
the dashboard; sign-out, a wrong code, the right one; hx-boost navigation. No CSP violation and
no console error anywhere, and a screenshot of every page under tests/e2e/screenshots/.
"""

from __future__ import annotations

import base64
import re
import time

from django_otp.oath import TOTP
from playwright.sync_api import Page, expect
from staff import PASSWORD, make_staff

STEP = 30  # seconds, django-otp's default (the setup page says "30 seconds")
DIGITS = 6


def totp(secret: str, *, steps_ahead: int = 0) -> str:
    """What an authenticator app shows for this base32 key (as the setup page prints it)."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    generator = TOTP(key, step=STEP, digits=DIGITS)
    generator.time = time.time() + steps_ahead * STEP
    return f"{generator.token():0{DIGITS}d}"


def wrong_code(secret: str) -> str:
    """A code that no time step the server could accept gives."""
    near = {totp(secret, steps_ahead=n) for n in range(-2, 3)}
    return next(c for c in ("000000", "111111", "222222") if c not in near)


def clear_of_step_boundary(margin: float = 3.0) -> None:
    """Wait out the last seconds of a time step, so a code is checked in the step it is for.

    django-otp accepts the neighbouring steps too but then records the drift, which would move
    the window of the next sign-in; keeping clear of the boundary keeps the test exact.
    """
    left = STEP - time.time() % STEP
    if left < margin:
        time.sleep(left + 0.05)


def sign_in_with_password(page: Page, base_url: str, username: str) -> None:
    page.goto(base_url + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Continue").click()


def enter_code(page: Page, code: str, button: str) -> None:
    page.fill("input[name=token]", code)
    page.get_by_role("button", name=button).click()


def test_first_sign_in_enrols_then_signs_in_again_with_a_code(live_server, page, watch, shot):
    base = live_server.url
    make_staff("operator")

    # 1. Password, then enrolment: the QR code and the key to type in.
    sign_in_with_password(page, base, "operator")
    expect(page).to_have_url(re.compile(r"/accounts/otp/setup/"))
    expect(page.get_by_role("heading", name="Set up your authenticator")).to_be_visible()
    expect(page.locator("figure.qr svg")).to_be_visible()
    shot("01-enrol")
    secret = page.locator("#totp-secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret

    clear_of_step_boundary()
    enter_code(page, totp(secret), "Confirm")

    # Backup codes, shown once.
    expect(page).to_have_url(re.compile(r"/accounts/backup-codes/"))
    codes = page.locator("#backup-codes li")
    expect(codes).to_have_count(10)
    assert len(set(codes.all_inner_texts())) == 10
    shot("02-backup-codes")
    page.get_by_role("link", name="I have saved them, continue").click()

    expect(page).to_have_url(base + "/")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_text("Signed in as operator")).to_be_visible()
    shot("03-dashboard")

    page.goto(base + "/accounts/backup-codes/")  # a second look shows no codes
    expect(page.locator("#backup-codes")).to_have_count(0)
    shot("04-backup-codes-again")
    page.go_back()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    watch.assert_clean(page)

    # 2. Sign out, sign in again: a wrong code is refused, the next step's code is not.
    page.locator("header").get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    expect(page.locator("header").get_by_role("button", name="Sign out")).to_have_count(0)
    shot("05-signed-out")

    sign_in_with_password(page, base, "operator")
    expect(page).to_have_url(re.compile(r"/accounts/otp/(\?.*)?$"))
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    shot("06-otp")

    enter_code(page, wrong_code(secret), "Verify")
    expect(page.locator("#code-error")).to_contain_text("That code is not right")
    expect(page).to_have_url(re.compile(r"/accounts/otp/(\?.*)?$"))
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
    shot("07-wrong-code")
    # The refusal is a 400 page, which Chromium logs as a failed load: expected, once.
    watch.expect_console_error(r"status of 400")

    time.sleep(1.1)  # the device's throttle after one wrong code (OTP_TOTP_THROTTLE_FACTOR=1)
    clear_of_step_boundary()
    # The enrolment used this step's code, and a used step never counts again: the next one.
    enter_code(page, totp(secret, steps_ahead=1), "Verify")
    expect(page).to_have_url(base + "/")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    shot("08-dashboard")

    # 3. The main navigation is boosted: the body is swapped, the document stays.
    page.evaluate("window.__sameDocument = true")
    nav = page.get_by_role("navigation", name="Main")
    with page.expect_request(lambda r: r.headers.get("hx-boosted") == "true"):
        nav.get_by_role("link", name="Deposits").click()
    expect(page).to_have_url(base + "/deposits/")
    expect(page.get_by_role("heading", name="Deposits", level=1)).to_be_visible()
    expect(page).to_have_title(re.compile(r"^Deposits"))
    expect(nav.get_by_role("link", name="Deposits")).to_have_attribute("aria-current", "page")
    assert page.evaluate("window.__sameDocument") is True
    shot("09-deposits")

    # 4. Nothing was blocked or broken on any page.
    watch.assert_clean(page)


def test_login_page_fits_1280x800_and_shows_keyboard_focus(live_server, page, watch, shot):
    page.goto(live_server.url + "/accounts/login/")
    assert page.viewport_size == {"width": 1280, "height": 800}
    for field in ("input[name=username]", "input[name=password]"):
        expect(page.locator(field)).to_be_in_viewport()
    expect(page.get_by_role("button", name="Continue")).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    shot("login")

    username = page.locator("input[name=username]")
    username.focus()
    assert username.evaluate("el => el === document.activeElement")
    assert username.evaluate("el => getComputedStyle(el).outlineStyle") != "none"

    # A button shows focus when the keyboard (not the mouse) brings it there.
    page.locator("input[name=password]").focus()
    page.keyboard.press("Tab")
    button = page.get_by_role("button", name="Continue")
    assert button.evaluate("el => el === document.activeElement")
    assert button.evaluate("el => getComputedStyle(el).outlineStyle") != "none"
    shot("login-focus")

    watch.assert_clean(page)
