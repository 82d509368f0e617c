"""Batch payout files (payments/services/batch_file.py, docs/batch-payouts.md): real CSV and XLSX
files read into rows, refused as a whole when they cannot be a batch, and every row checked
against the mirrors and the payouts of the last 30 days, each problem on its row and column."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from staff import make_staff

from parties.models import Recipient, Sender
from payments.services import payouts
from payments.services.batch_file import BatchFileError, parse, validate

pytestmark = pytest.mark.django_db

HEADER = "recipient_id,amount,reference"


def csv_file(text: str, name: str = "batch.csv", *, bom: bool = False) -> SimpleUploadedFile:
    data = ("\ufeff" if bom else "").encode() + text.encode()
    return SimpleUploadedFile(name, data, content_type="text/csv")


def xlsx_file(*sheets: list[list], name: str = "batch.xlsx") -> SimpleUploadedFile:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for i, rows in enumerate(sheets):
        sheet = book.create_sheet(f"Sheet{i + 1}")
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return SimpleUploadedFile(name, out.getvalue())


def check(text: str, **kwargs):
    return validate(parse(csv_file(text)), **kwargs)


def errors(validation) -> list[tuple[int, str, str]]:
    return [(e.row, e.column, e.message) for e in validation.errors]


def refused(upload) -> str:
    with pytest.raises(BatchFileError) as refusal:
        parse(upload)
    return str(refusal.value)


def fid(n: int, kind: str = "r") -> str:
    return f"{kind}{n:023d}"


@pytest.fixture
def mia():
    return Recipient.objects.create(
        flashfx_id=fid(1),
        external_id="SUP-0001",
        nick_name="MiaNg",
        account_id_type="BSB",
        currency="AUD",
        first_name="Mia",
        last_name="Ng",
        bsb="062000",
        account_no="12345678",
    )


@pytest.fixture
def sender():
    return Sender.objects.create(
        flashfx_id=fid(1, "s"), nick_name="DemoCompan", company_name="Demo Company Pty Ltd"
    )


# --- Reading files --------------------------------------------------------------------------


@pytest.mark.parametrize("bom", [False, True])
def test_a_csv_is_read_into_rows_numbered_as_a_person_sees_them(bom):
    text = f'{HEADER}\r\n{fid(1)},10.00,INV 1\r\n,,\r\n{fid(2)}, 20.50 ,"INV, 2"\r\n'
    parsed = parse(csv_file(text, bom=bom))
    assert parsed.kind == "csv" and parsed.columns == ("recipient_id", "amount", "reference")
    assert [(r.number, r.cells) for r in parsed.rows] == [
        (2, {"recipient_id": fid(1), "amount": "10.00", "reference": "INV 1"}),
        (4, {"recipient_id": fid(2), "amount": "20.50", "reference": "INV, 2"}),  # blank row 3
    ]


def test_an_xlsx_is_read_from_its_first_sheet_with_numbers_as_the_digits_it_holds():
    upload = xlsx_file(
        [
            ["Recipient ID", "AMOUNT", "Reference", "Sender"],
            [fid(1), 12.5, 1042, None],
            [],
            [fid(2), 100, "INV 7", "DemoCompan"],
        ],
        [["amount"], ["999"]],  # a second sheet: never read
    )
    parsed = parse(upload)
    assert parsed.kind == "xlsx"
    assert parsed.columns == ("recipient_id", "amount", "reference", "sender")
    assert [(r.number, r.cells) for r in parsed.rows] == [
        (2, {"recipient_id": fid(1), "amount": "12.5", "reference": "1042", "sender": ""}),
        (
            4,
            {"recipient_id": fid(2), "amount": "100", "reference": "INV 7", "sender": "DemoCompan"},
        ),
    ]


def test_column_names_are_matched_whatever_their_case_spaces_or_underscores():
    parsed = parse(
        csv_file(
            "Recipient Nick Name,account no,BSB,Account_Name,AMOUNT,reference\n,1,062000,Kim,1,A\n"
        )
    )
    assert parsed.columns == (
        "recipient_nick_name", "account_no", "bsb", "account_name", "amount", "reference"
    )  # fmt: skip


def test_nothing_but_column_names_is_refused():
    assert "no payouts below them" in refused(csv_file(f"{HEADER}\n\n"))


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (
            csv_file(HEADER, name="batch.txt"),
            "Upload a CSV (.csv) or Excel (.xlsx) file; 'batch.txt'",
        ),
        (csv_file(HEADER, name="batch.xls"), "Save it as .xlsx or CSV UTF-8"),
        (csv_file("", name="batch.csv"), "The file is empty."),
        (csv_file("", name="batch.csv", bom=True), "The file is empty."),
        (SimpleUploadedFile("batch.xlsx", b""), "The file is empty."),
        (csv_file("\n" + HEADER), "Row 1 must name the columns"),
        (csv_file(HEADER, name="batch.xlsx"), "not an Excel workbook"),
        (xlsx_file([]), "The file is empty."),
        (csv_file("recipient_id;amount;reference\n"), "separated by semicolons"),
    ],
)
def test_a_file_that_is_no_batch_is_refused_saying_why(upload, message):
    assert message in refused(upload)


def test_missing_columns_are_named():
    assert "Missing columns: amount; reference." in refused(csv_file("recipient_id\n"))
    assert "Missing column: the recipient: recipient_id" in refused(csv_file("amount,reference\n"))
    assert "Missing column: account_no." in refused(csv_file("account_name,bsb,amount,reference\n"))
    assert "Missing column: bsb and account_no, or payid." in refused(
        csv_file("account_name,amount,reference\n")
    )


def test_unknown_and_repeated_columns_are_named():
    message = refused(csv_file("recipient_id,amount,reference,Notes,iban\n"))
    assert "Unknown columns: 'Notes', 'iban'." in message
    assert "recipient_id, recipient_external_id, recipient_nick_name" in message  # what is known
    assert "Column given twice: amount." in refused(
        csv_file("recipient_id,amount,Amount,reference\n")
    )


def test_a_value_under_no_column_name_is_refused_with_where_it_is():
    text = f"{HEADER},\n{fid(1)},1.00,A,\n{fid(1)},2.00,B,oops\n"
    assert "row 3, column D" in refused(csv_file(text))
    assert parse(csv_file(text.replace("oops", ""))).columns == (
        "recipient_id",
        "amount",
        "reference",
    )


def rezipped(upload: SimpleUploadedFile, change) -> SimpleUploadedFile:
    """The same workbook with its parts passed through change(name, data) -> data."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(upload.read())) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for name in src.namelist():
            dst.writestr(name, change(name, src.read(name)))
    return SimpleUploadedFile(upload.name, out.getvalue())


def test_a_damaged_workbook_is_refused():
    upload = xlsx_file([["recipient_id", "amount", "reference"], [fid(1), 1, "A"]])
    cut = rezipped(
        upload, lambda name, data: data[: len(data) // 2] if "worksheets/" in name else data
    )
    assert "not an Excel workbook" in refused(cut)


def test_a_workbook_that_unpacks_to_far_more_than_the_size_cap_is_refused(settings):
    settings.BATCH_MAX_FILE_BYTES = 20_000
    upload = xlsx_file([["recipient_id", "amount", "reference"], [fid(1), 1, "A"]])
    padded = rezipped(
        upload, lambda name, data: data + b" " * 500_000 if name.endswith("app.xml") else data
    )
    assert len(padded) < 20_000
    assert "The workbook unpacks to" in refused(padded)


def test_more_rows_than_a_batch_holds_are_refused(settings):
    settings.BATCH_MAX_ROWS = 3
    rows = "".join(f"{fid(1)},1.00,R{n}\n" for n in range(3))
    assert len(parse(csv_file(f"{HEADER}\n{rows}\n\n")).rows) == 3  # blank rows do not count
    message = refused(csv_file(f"{HEADER}\n{rows}{fid(1)},1.00,R4\n"))
    assert "more than 3 payouts (row 5 is one too many)" in message


def test_a_file_over_the_size_cap_is_refused_unread(settings):
    settings.BATCH_MAX_FILE_BYTES = 1024
    text = HEADER + "\n" + f"{fid(1)},1.00,REF\n" * 40
    assert len(text) > 1024
    assert "larger than 1 kB" in refused(csv_file(text))


def test_text_that_is_not_utf8_is_refused_with_its_line():
    data = f"{HEADER}\n{fid(1)},1.00,Caf\u00e9\n".encode("cp1252")
    assert "Line 2 is not UTF-8 text" in refused(SimpleUploadedFile("batch.csv", data))


def test_broken_quotes_are_refused_with_their_line():
    assert "Line 2 cannot be read as CSV" in refused(csv_file(f'{HEADER}\n{fid(1)},"1.00"x,R\n'))


# --- Recipients -------------------------------------------------------------------------------


def test_a_recipient_is_named_by_its_flashfx_id_our_reference_or_its_nickname(mia):
    v = check(
        "recipient_id,recipient_external_id,recipient_nick_name,amount,reference\n"
        f"{fid(1)},,,1.00,A\n,SUP-0001,,2.00,B\n,,MiaNg,3.00,C\n"
    )
    assert v.ok and v.checked == 3
    assert [(r.row, r.recipient_pk, r.recipient_flashfx_id, r.new_recipient) for r in v.rows] == [
        (2, mia.pk, fid(1), None),
        (3, mia.pk, fid(1), None),
        (4, mia.pk, fid(1), None),
    ]


def test_a_recipient_that_cannot_be_paid_is_an_error_on_its_cell(mia):
    Recipient.objects.create(
        flashfx_id=fid(2), nick_name="Gone", account_id_type="BSB", currency="AUD",
        deleted_at=timezone.now(),
    )  # fmt: skip
    Recipient.objects.create(
        flashfx_id=fid(3), nick_name="Twin", account_id_type="BSB", currency="AUD"
    )
    Recipient.objects.create(
        flashfx_id=fid(4), nick_name="Twin", account_id_type="BSB", currency="AUD"
    )
    Recipient.objects.create(
        flashfx_id=fid(5), account_id_type="IBAN", currency="EUR", iban="DE89370400440532013000"
    )
    v = check(
        "recipient_id,recipient_nick_name,amount,reference\n"
        f"{fid(9)},,1.00,A\n{fid(2)},,1.00,B\n,Gone,1.00,C\n,Twin,1.00,D\n{fid(5)},,1.00,E\n"
    )
    assert errors(v) == [
        (2, "recipient_id", f"No recipient has recipient_id '{fid(9)}'."),
        (3, "recipient_id", "This recipient was deleted."),
        (4, "recipient_nick_name", "This recipient was deleted."),
        (5, "recipient_nick_name", f"2 recipients have this nick_name: give recipient_id instead ({fid(4)}, {fid(3)})."),
        (6, "recipient_id", "Payouts go to Australian AUD accounts (BSB and account number, or PayID); pay this recipient with an international payment."),
    ]  # fmt: skip
    assert v.rows == () and v.count == 0 and v.total == Decimal("0.00")


def test_a_row_names_its_recipient_exactly_one_way(mia):
    v = check(
        "recipient_id,account_name,bsb,account_no,amount,reference\n"
        f"{fid(1)},Mia Ng,062000,12345678,1.00,A\n,,,,1.00,B\n"
    )
    assert errors(v) == [
        (2, "", "Name the recipient one way only; this row gives recipient_id and bank details."),
        (3, "", "Name the recipient: recipient_id, recipient_external_id or recipient_nick_name, or bank details (account_name with bsb and account_no, or with payid)."),
    ]  # fmt: skip


def test_inline_bank_details_make_a_recipient_to_be_created_checked_as_the_recipient_form_does():
    v = check(
        "account_name,bsb,account_no,payid,amount,reference\n"
        "Kim's Bakery,062-000,1234 5678,,10.00,A\n"
        "Jo Citizen,,,jo@example.com,11.00,B\n"
    )
    assert v.ok, v.errors
    bsb, payid = v.rows
    assert bsb.recipient_pk is None and bsb.recipient_flashfx_id == ""
    assert bsb.new_recipient is not None and payid.new_recipient is not None
    assert {k: v for k, v in bsb.new_recipient.items() if v} == {
        "company_name": "Kim's Bakery", "currency": "AUD", "bsb": "062000",
        "account_no": "12345678", "account_id_type": "BSB",
    }  # fmt: skip
    assert {k: v for k, v in payid.new_recipient.items() if v} == {
        "company_name": "Jo Citizen", "currency": "AUD", "payid": "jo@example.com",
        "account_id_type": "PAYID",
    }  # fmt: skip


def test_bad_inline_bank_details_are_errors_on_their_cells():
    v = check(
        "account_name,bsb,account_no,payid,amount,reference\n"
        "Kim,06200,12345678,,1.00,A\n"
        ",062000,12,,1.00,B\n"
        "Jo,,,not a payid,1.00,C\n"
        "Jo,062000,12345678,jo@example.com,1.00,D\n"
        "Kim,062000,,,1.00,E\n"
        "<Kim>,062000,12345678,,1.00,F\n"
    )
    assert errors(v) == [
        (2, "bsb", "A BSB is exactly 6 digits."),
        (3, "account_name", "Give the name on the account."),
        (3, "account_no", "4 to 34 letters or digits."),
        (4, "payid", "A PayID is an email address, a mobile number (+61...) or an ABN (11 digits)."),
        (5, "payid", "Give a BSB and account number, or a PayID, not both."),
        (6, "account_no", "Give the account_no."),
        (7, "account_name", "Must not contain <, = or >."),
    ]  # fmt: skip


# --- Amounts, currency, reference, sender, reason -----------------------------------------------


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("", "Give the amount, e.g. 1250.00."),
        ("1,234.50", "Write the amount without thousands separators: 1234.50, not 1,234.50."),
        ("-5", "The amount must be more than zero."),
        ("$-5", "The amount must be more than zero."),
        ("0", "The amount must be more than zero."),
        ("0.00", "The amount must be more than zero."),
        ("10.005", "At most two decimal places; this one has 3."),
        ("\u20ac10", "Write the amount as digits with at most two decimal places, e.g. 1250.00 (no currency sign other than a leading $)."),
        ("AUD 10", "Write the amount as digits with at most two decimal places, e.g. 1250.00 (no currency sign other than a leading $)."),
        ("1e3", "Write the amount as digits with at most two decimal places, e.g. 1250.00 (no currency sign other than a leading $)."),
        ("1000000000000", "That amount is too large."),
    ],
)  # fmt: skip
def test_an_amount_is_an_exact_decimal_above_zero_with_at_most_two_places(mia, amount, message):
    assert errors(check(f'{HEADER}\n{fid(1)},"{amount}",A\n')) == [(2, "amount", message)]


def test_amounts_are_exact_decimals_and_total_exactly(mia):
    v = check(f"{HEADER}\n{fid(1)},0.10,A\n{fid(1)},$0.2,B\n{fid(1)},999999999999.99,C\n")
    assert [r.amount for r in v.rows] == [
        Decimal("0.10"),
        Decimal("0.20"),
        Decimal("999999999999.99"),
    ]
    assert v.count == 3 and v.total == Decimal("1000000000000.29") and v.currency == "AUD"


def test_an_xlsx_amount_is_read_from_the_digits_not_through_float_arithmetic(mia):
    v = validate(
        parse(
            xlsx_file(
                [["recipient_id", "amount", "reference"], [fid(1), 0.1, "A"], [fid(1), 0.2, "B"]]
            )
        )
    )
    assert [r.amount for r in v.rows] == [Decimal("0.10"), Decimal("0.20")]
    assert v.total == Decimal("0.30")


def test_the_currency_is_aud_or_left_empty(mia):
    v = check(f"{HEADER},currency\n{fid(1)},1.00,A,\n{fid(1)},1.00,B,aud\n{fid(1)},1.00,C,USD\n")
    assert [(r.row, r.currency) for r in v.rows] == [(2, "AUD"), (3, "AUD")]
    assert errors(v) == [
        (4, "currency", "Payouts are in AUD only (or leave it empty); pay USD with an international payment.")
    ]  # fmt: skip


@pytest.mark.parametrize("reference", ["", "x" * 19, "Caf\u00e9 12", "N/A"])
def test_the_reference_follows_the_payout_rules(mia, reference):
    assert errors(check(f"{HEADER}\n{fid(1)},1.00,{reference}\n")) == [
        (2, "reference", payouts.reference_problem(reference))
    ]


def test_a_sender_is_named_by_its_flashfx_id_or_nickname(mia, sender):
    Sender.objects.create(flashfx_id=fid(2, "s"), nick_name="Twins")
    Sender.objects.create(flashfx_id=fid(3, "s"), nick_name="Twins")
    Sender.objects.create(flashfx_id=fid(4, "s"), nick_name="Old", deleted_at=timezone.now())
    v = check(
        f"{HEADER},sender\n"
        f"{fid(1)},1.00,A,{fid(1, 's')}\n{fid(1)},1.00,B,DemoCompan\n{fid(1)},1.00,C,\n"
        f"{fid(1)},1.00,D,Nobody\n{fid(1)},1.00,E,Twins\n{fid(1)},1.00,F,{fid(4, 's')}\n"
    )
    assert [(r.row, r.sender_pk) for r in v.rows] == [(2, sender.pk), (3, sender.pk), (4, None)]
    assert errors(v) == [
        (5, "sender", "No sender has the FlashFX id or nickname 'Nobody'."),
        (6, "sender", f"2 senders have the nickname 'Twins': give the sender's FlashFX id instead ({fid(3, 's')}, {fid(2, 's')})."),
        (7, "sender", "This sender was deleted."),
    ]  # fmt: skip


def test_the_reason_is_one_of_flashfxs_and_services_when_left_empty(mia):
    v = check(
        f"{HEADER},reason\n{fid(1)},1.00,A,\n{fid(1)},1.00,B,loan repayment\n{fid(1)},1.00,C,bribe\n"
    )
    assert [(r.row, r.reason) for r in v.rows] == [(2, "SERVICES"), (3, "LOAN_REPAYMENT")]
    assert [(e.row, e.column) for e in v.errors] == [(4, "reason")]
    assert "Unknown reason 'bribe': one of BUSINESS, SALARY" in v.errors[0].message


# --- Duplicates ---------------------------------------------------------------------------------


def test_rows_paying_the_same_account_amount_and_reference_are_each_flagged(mia):
    v = check(
        "recipient_id,account_name,bsb,account_no,amount,reference\n"
        f"{fid(1)},,,,10.00,INV 1\n"
        ",Mia Ng,062-000,12345678,10,INV 1\n"  # the same account, given inline
        f"{fid(1)},,,,10.00,INV 2\n"
        f"{fid(1)},,,,10.01,INV 1\n"
        f"{fid(1)},,,,$10.0,INV 1\n"
    )
    same = "give each payout its own reference, or remove the copy."
    assert errors(v) == [
        (2, "reference", f"Same recipient, amount and reference as rows 3, 6: {same}"),
        (3, "reference", f"Same recipient, amount and reference as rows 2, 6: {same}"),
        (6, "reference", f"Same recipient, amount and reference as rows 2, 3: {same}"),
    ]
    assert [r.row for r in v.rows] == [4, 5]


def test_a_payout_of_the_last_30_days_is_flagged_with_its_code(mia, sender):
    maker = make_staff("operator")
    live = payouts.payout_create(
        by=maker, recipient=mia, sender=sender, amount=Decimal("10.00"), reference="INV 1",
        reason="SERVICES",
    )  # fmt: skip
    withdrawn = payouts.payout_create(
        by=maker, recipient=mia, sender=sender, amount=Decimal("20.00"), reference="INV 2",
        reason="SERVICES",
    )  # fmt: skip
    payouts.payout_cancel(payout=withdrawn, by=maker)
    text = f"{HEADER}\n{fid(1)},10.00,INV 1\n{fid(1)},20.00,INV 2\n{fid(1)},10.00,INV 3\n"

    v = check(text)
    assert [(e.row, e.column) for e in v.errors] == [(2, "reference")]
    assert v.errors[0].message.startswith(f"Payout {live.code} (awaiting approval, started ")
    assert [r.row for r in v.rows] == [3, 4]  # a cancelled payout paid nothing
    assert check(text, now=live.created_at + timedelta(days=31)).ok  # older than 30 days


# --- Queries ------------------------------------------------------------------------------------


def test_checking_a_thousand_rows_takes_as_few_queries_as_checking_two(sender):
    Recipient.objects.bulk_create(
        Recipient(
            flashfx_id=fid(n), external_id=f"SUP-{n:04d}", nick_name=f"Nick{n}",
            account_id_type="BSB", currency="AUD", bsb="062000", account_no=f"{n:08d}",
        )
        for n in range(1000)
    )  # fmt: skip
    by = ("recipient_id", "recipient_external_id", "recipient_nick_name")

    def rows(count: int) -> str:
        lines = [
            "recipient_id,recipient_external_id,recipient_nick_name,account_name,bsb,account_no,amount,reference,sender"
        ]
        for n in range(count):
            cells = {
                "recipient_id": fid(n),
                "recipient_external_id": f"SUP-{n:04d}",
                "recipient_nick_name": f"Nick{n}",
            }
            way = by[n % 4] if n % 4 < 3 else None
            recipient = [cells[way] if c == way else "" for c in by]
            inline = ["", "", ""] if way else [f"Payee {n}", "062001", f"{n:08d}"]
            lines.append(",".join([*recipient, *inline, f"{n}.01", f"INV {n}", fid(1, "s")]))
        return "\n".join(lines) + "\n"  # fmt: skip

    small, large = parse(csv_file(rows(2))), parse(csv_file(rows(1000)))
    with CaptureQueriesContext(connection) as two:
        assert validate(small).count == 2
    with CaptureQueriesContext(connection) as thousand:
        v = validate(large)
    assert v.ok and v.count == 1000 and v.total == sum(Decimal(f"{n}.01") for n in range(1000))
    assert len(thousand) == len(two) <= 4  # the policy, recipients, senders, earlier payouts
    assert sum(1 for r in v.rows if r.new_recipient) == 250


# --- The sample in the docs -------------------------------------------------------------------


def test_the_sample_file_in_the_docs_is_clean_and_is_the_example_shown(mia, sender):
    docs = Path(__file__).resolve().parents[2] / "docs"
    sample = (docs / "samples/batch-payouts.csv").read_bytes()
    assert f"```csv\n{sample.decode()}```" in (docs / "batch-payouts.md").read_text()
    Recipient.objects.filter(pk=mia.pk).update(flashfx_id="65f1c2a9e4b0a1d2c3e4f501")
    Recipient.objects.create(
        flashfx_id=fid(2), external_id="SUP-0042", account_id_type="PAYID", currency="AUD",
        payid="accounts@supplier.example",
    )  # fmt: skip
    Sender.objects.filter(pk=sender.pk).update(flashfx_id="65f1c2a9e4b0a1d2c3e4f5aa")

    v = validate(parse(SimpleUploadedFile("batch-payouts.csv", sample)))
    assert v.ok, v.errors
    assert v.count == 5 and v.total == Decimal("2647.70")
    assert [(r.row, r.reason, bool(r.new_recipient), r.sender_pk) for r in v.rows] == [
        (2, "SERVICES", False, None),
        (3, "GOODS", False, None),
        (4, "SERVICES", False, sender.pk),
        (5, "SERVICES", True, None),
        (6, "PERSONAL", True, None),
    ]
