"""Second-factor rules found in review: a backup code gets a member in but never counts as a
fresh code for money; a wrong authenticator code does not also throttle the backup codes; the
audit chain is keyed and can be checked against a head recorded elsewhere."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from staff import PASSWORD, code, enrol, make_staff

from backoffice import audit, otp
from backoffice.audit import record, verify_chain

pytestmark = pytest.mark.django_db


def password_step(client, username):
    return client.post("/accounts/login/", {"username": username, "password": PASSWORD})


def enter_code(client, token, path="/accounts/otp/", next_url="/"):
    return client.post(path, {"token": token, "next": next_url})


def test_a_backup_code_signs_in_but_money_still_asks_for_the_authenticator(client, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    user = make_staff("operator")
    device = enrol(user)
    backup = otp.new_backup_codes(user)[0]
    password_step(client, user.username)
    assert enter_code(client, backup).status_code == 302
    assert client.get("/deposits/").status_code == 200  # in

    # A money action (here: making new backup codes) sends them to the step-up first ...
    response = client.post("/accounts/backup-codes/")
    assert response["Location"].startswith("/accounts/step-up/")
    # ... where only the authenticator's code is taken.
    assert enter_code(client, code(device), path="/accounts/step-up/").status_code == 302
    assert client.post("/accounts/backup-codes/")["Location"].startswith("/accounts/backup-codes/")


def test_a_wrong_six_digit_code_does_not_throttle_the_backup_codes(client):
    user = make_staff("viewer")
    device = enrol(user)
    backup = otp.new_backup_codes(user)[0]
    password_step(client, user.username)
    valid = {code(device, steps_ahead=s) for s in (-1, 0, 1)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in valid)
    assert enter_code(client, wrong).status_code == 400
    # The authenticator now waits a second; the backup code is not held up by it.
    assert enter_code(client, backup).status_code == 302


def test_the_chain_is_keyed_a_copy_rebuilt_without_the_key_does_not_verify(settings):
    for n in range(3):
        record("test.keyed", details={"n": n})
    assert verify_chain()[2] == []
    settings.AUDIT_HMAC_KEY = "someone-elses-key"
    assert len(verify_chain()[2]) == 3


def test_verify_audit_catches_rows_removed_from_the_end_given_the_head_recorded_earlier(capsys):
    for n in range(3):
        record("test.head", details={"n": n})
    call_command("verify_audit")
    printed = capsys.readouterr().out
    head = printed.rsplit("head ", 1)[1].strip()
    count = int(printed.split("intact: ")[1].split(" events")[0])
    call_command("verify_audit", expect_head=head, min_count=count)  # still fine

    # The two last rows are gone (the trigger is bypassed here as an attacker with the
    # database would); the chain that remains is intact, but not the one recorded.
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE backoffice_auditevent DISABLE TRIGGER USER")
        cursor.execute(
            "DELETE FROM backoffice_auditevent WHERE id IN "
            "(SELECT id FROM backoffice_auditevent ORDER BY id DESC LIMIT 2)"
        )
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE backoffice_auditevent ENABLE TRIGGER USER")
    call_command("verify_audit")  # the rest is a valid chain
    with pytest.raises(CommandError, match="no longer in the chain"):
        call_command("verify_audit", expect_head=head)
    with pytest.raises(CommandError, match="fewer than"):
        call_command("verify_audit", min_count=count)
    assert audit.GENESIS  # the chain still starts where it did
