"""Batch payout files (docs/batch-payouts.md): a CSV or XLSX of up to BATCH_MAX_ROWS payouts,
read into rows of text (`parse`), then every row checked before anything is created
(`validate`), with each problem tied to its row and column.

Pure: it reads the mirrors and the payouts, and writes and calls nothing. The batch pages and
models turn `Validation.rows` into payouts (and inline bank details into recipients) later.

Whatever the file, `parse` either returns every non-blank row or raises BatchFileError naming
each reason the file as a whole cannot be a batch (its type, size, columns, row count);
`validate` never raises for what a row holds: that is a CellError.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import defaultdict
from collections.abc import Generator, Iterable
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import PurePath
from typing import Any
from xml.etree.ElementTree import ParseError

import openpyxl
from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

from parties.forms.recipients import RecipientForm
from parties.models import Recipient, Sender

from ..models import Payout
from .payout_policy import payout_policy
from .payouts import ACCOUNT_TYPES, CENT, reference_problem

# Every column a file may have, in the order docs/batch-payouts.md lists them.
COLUMNS = (
    "recipient_id",
    "recipient_external_id",
    "recipient_nick_name",
    "account_name",
    "bsb",
    "account_no",
    "payid",
    "amount",
    "currency",
    "reference",
    "sender",
    "reason",
)
REQUIRED = ("amount", "reference")
# The columns that name an existing recipient, and the Recipient field each is matched with.
# recipient_external_id is "our reference": the id our own systems gave the recipient
# (RecipientForm's "Your own reference for it"); the nickname is FlashFX's, shown in its portal.
LOOKUPS = {
    "recipient_id": "flashfx_id",
    "recipient_external_id": "external_id",
    "recipient_nick_name": "nick_name",
}
# Inline bank details: a recipient to be created at FlashFX when the batch is sent.
INLINE = ("account_name", "bsb", "account_no", "payid")
# RecipientForm's fields for an inline recipient, as the file's columns. The account name is
# the form's company name: the name on the account, whatever kind of holder it is.
FORM_COLUMNS = {"company_name": "account_name", "bsb": "bsb", "account_no": "account_no",
                "payid": "payid", "currency": "currency"}  # fmt: skip
DEFAULT_REASON = Payout.Reason.SERVICES
AMOUNT = re.compile(r"\$?([0-9]+(?:\.[0-9]+)?)")
AMOUNT_LIMIT = Decimal("1e12")  # as payout_create: larger is a typing mistake
DUPLICATE_DAYS = 30
# Payouts that never moved money and never will: paying the same again is no duplicate. A
# SUBMIT_FAILED one was refused by FlashFX (its code says why), so the file is the way to retry.
NOT_PAID = (
    Payout.State.DECLINED,
    Payout.State.CANCELLED,
    Payout.State.EXPIRED,
    Payout.State.SUBMIT_FAILED,
)
# An XLSX is a zip: refuse one that unpacks to more than this many times the size cap.
XLSX_MAX_UNPACKED_RATIO = 20
SHOWN_ROWS = 5  # row numbers listed in one message before "and N more"


class BatchFileError(Exception):
    """The file cannot be read as a batch at all; `problems` says each reason, for the member."""

    def __init__(self, *problems: str) -> None:
        super().__init__(" ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ParsedRow:
    number: int  # the row's number in the file as a person sees it: the column names are row 1
    cells: dict[str, str]  # each of the file's columns -> its text here, stripped

    def get(self, column: str) -> str:
        return self.cells.get(column, "")


@dataclass(frozen=True)
class ParsedFile:
    name: str
    kind: str  # "csv" or "xlsx"
    columns: tuple[str, ...]  # our names for the file's columns, in its order
    rows: tuple[ParsedRow, ...]  # blank rows left out


@dataclass(frozen=True)
class CellError:
    row: int
    column: str  # the column at fault; "" for the row as a whole (how it names its recipient)
    message: str


@dataclass(frozen=True)
class BatchRow:
    """A clean row: a payout ready to be made, in the terms payout_create takes."""

    row: int
    amount: Decimal
    currency: str
    reference: str
    reason: str
    recipient_pk: int | None  # an existing recipient; None: `new_recipient` is to be created
    recipient_flashfx_id: str
    new_recipient: dict[str, Any] | None  # RecipientForm.recipient_fields(), for recipient_create
    sender_pk: int | None  # None: the sender the batch names for all its rows


@dataclass(frozen=True)
class Validation:
    rows: tuple[BatchRow, ...]  # the clean rows, in the file's order
    errors: tuple[CellError, ...]  # by row, then in the order checked
    checked: int  # rows checked, clean or not
    currency: str

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def count(self) -> int:
        return len(self.rows)

    @property
    def total(self) -> Decimal:
        return sum((r.amount for r in self.rows), Decimal("0.00"))

    def errors_by_row(self) -> dict[int, list[CellError]]:
        by_row: dict[int, list[CellError]] = defaultdict(list)
        for error in self.errors:
            by_row[error.row].append(error)
        return dict(by_row)


# --- Reading the file ---------------------------------------------------------------------------


def parse(upload: Any) -> ParsedFile:
    """An uploaded file (a name and read()) as rows of text. BatchFileError says why not."""
    name = str(getattr(upload, "name", "") or "")
    max_bytes = settings.BATCH_MAX_FILE_BYTES
    data = upload.read(max_bytes + 1)  # never more than the cap, whatever the upload claims
    if len(data) > max_bytes:
        raise BatchFileError(
            f"The file is larger than {_size(max_bytes)}, more than a batch of "
            f"{settings.BATCH_MAX_ROWS} payouts needs: is it the right file?"
        )
    kind = PurePath(name).suffix.lower().lstrip(".")
    if kind not in ("csv", "xlsx"):
        hint = (
            " Save it as .xlsx or CSV UTF-8." if kind in ("xls", "xlsm", "ods", "numbers") else ""
        )
        raise BatchFileError(
            f"Upload a CSV (.csv) or Excel (.xlsx) file; {name!r} is neither.{hint}"
        )
    if not data:
        raise BatchFileError("The file is empty.")
    table = _csv_table(data) if kind == "csv" else _xlsx_table(data)
    with closing(table):
        columns, rows = _read_table(table)
    return ParsedFile(name=name, kind=kind, columns=columns, rows=rows)


def _size(n: int) -> str:
    return f"{n / 1_048_576:.3g} MB" if n >= 1_048_576 else f"{n / 1024:.3g} kB"


def _csv_table(data: bytes) -> Generator[tuple[int, list[str]]]:
    try:
        text = data.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a byte order mark
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BatchFileError(
            f"Line {line} is not UTF-8 text: save the file as \u201cCSV UTF-8\u201d and upload it again."
        ) from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for number, cells in enumerate(reader, start=1):
            yield number, [cell.strip() for cell in cells]
    except csv.Error as exc:
        raise BatchFileError(
            f"Line {reader.line_num} cannot be read as CSV ({exc}): check its quotes."
        ) from exc


def _xlsx_table(data: bytes) -> Generator[tuple[int, list[str]]]:
    not_xlsx = (
        "This is not an Excel workbook (.xlsx) that can be read; a password-protected one "
        "must be saved without its password."
    )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise BatchFileError(not_xlsx) from exc
    if unpacked > XLSX_MAX_UNPACKED_RATIO * settings.BATCH_MAX_FILE_BYTES:
        raise BatchFileError(f"The workbook unpacks to {_size(unpacked)}: too large for a batch.")
    try:
        # Values only: a formula's result as Excel last saved it (none if it never computed it).
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (KeyError, InvalidFileException, ParseError, zipfile.BadZipFile) as exc:
        raise BatchFileError(not_xlsx) from exc
    try:
        if not book.worksheets:
            raise BatchFileError("The workbook has no sheet.")
        sheet = book.worksheets[0]
        # The stored dimensions may be wrong or huge (a format applied to a whole column):
        # read the rows as they are, no wider than each one's last cell.
        sheet.reset_dimensions()
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, [_cell_text(value) for value in values]
    except ParseError as exc:
        raise BatchFileError(not_xlsx) from exc
    finally:
        book.close()


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        # The shortest text that is this number: the digits the file holds (1250.5 stays
        # "1250.5"), so amounts are read from text and never through a float's arithmetic.
        return repr(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value).strip()


def _canonical(header: str) -> str:
    return re.sub(r"[\s_]+", "", header).lower()


CANONICAL = {_canonical(c): c for c in COLUMNS}


def _read_table(
    table: Iterable[tuple[int, list[str]]],
) -> tuple[tuple[str, ...], tuple[ParsedRow, ...]]:
    max_rows = settings.BATCH_MAX_ROWS
    lines = iter(table)
    first = next(lines, None)
    if first is None:
        raise BatchFileError("The file is empty.")
    if not any(first[1]):
        raise BatchFileError(
            "Row 1 must name the columns (e.g. recipient_id, amount, reference); it is empty."
        )
    header = _header(first[1])
    columns = tuple(c for c in header if c)
    rows: list[ParsedRow] = []
    stray: list[str] = []  # values under no column name
    for number, cells in lines:
        if not any(cells):
            continue
        if len(rows) == max_rows:
            raise BatchFileError(
                f"The file has more than {max_rows} payouts (row {number} is one too many): "
                "split it into batches of at most that many."
            )
        values = dict.fromkeys(columns, "")  # a short row's missing cells are blank
        for i, text in enumerate(cells):
            column = header[i] if i < len(header) else None
            if column:
                values[column] = text
            elif text:
                stray.append(f"row {number}, column {get_column_letter(i + 1)}")
        rows.append(ParsedRow(number=number, cells=values))
    if stray:
        raise BatchFileError(
            f"Values in columns with no name in row 1 ({_listed(stray)}): "
            "name those columns or clear them."
        )
    if not rows:
        raise BatchFileError("The file names its columns but has no payouts below them.")
    return columns, tuple(rows)


def _header(cells: list[str]) -> list[str | None]:
    """Our name for each column (None for an unnamed one), or BatchFileError naming every
    unknown, repeated and missing column."""
    header = [CANONICAL.get(_canonical(cell)) if cell else None for cell in cells]
    problems = []
    unknown = [cell for cell, column in zip(cells, header, strict=True) if cell and not column]
    if unknown:
        semicolons = len(cells) == 1 and ";" in cells[0]
        problems.append(
            "The columns are separated by semicolons; save the file with commas."
            if semicolons
            else f"Unknown column{'s' * (len(unknown) > 1)}: {', '.join(map(repr, unknown))}. "
            f"A batch file's columns are {', '.join(COLUMNS)}."
        )
    repeated = sorted({c for c in header if c and header.count(c) > 1})
    if repeated:
        problems.append(f"Column{'s' * (len(repeated) > 1)} given twice: {', '.join(repeated)}.")
    if not unknown and (missing := _missing({c for c in header if c})):
        problems.append(f"Missing column{'s' * (len(missing) > 1)}: {'; '.join(missing)}.")
    if problems:
        raise BatchFileError(*problems)
    return header


def _missing(present: set[str]) -> list[str]:
    missing = [c for c in REQUIRED if c not in present]
    if present & set(INLINE):
        if "account_name" not in present:
            missing.append("account_name")
        if "bsb" in present and "account_no" not in present:
            missing.append("account_no")
        elif "account_no" in present and "bsb" not in present:
            missing.append("bsb")
        elif not present & {"bsb", "account_no", "payid"}:
            missing.append("bsb and account_no, or payid")
    elif not present & set(LOOKUPS):
        missing.append(
            "the recipient: recipient_id, recipient_external_id or recipient_nick_name, "
            "or bank details (account_name with bsb and account_no, or with payid)"
        )
    return missing


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN_ROWS])
    return f"{shown} and {len(items) - SHOWN_ROWS} more" if len(items) > SHOWN_ROWS else shown


# --- Checking the rows --------------------------------------------------------------------------

# Who a payout pays: the bank account itself, whichever recipient row holds it, so that a
# row naming a recipient and a row giving its bank details are the same payee.
Payee = tuple[str, ...]


def _payee(account_id_type: str, bsb: str, account_no: str, payid: str) -> Payee:
    return ("PAYID", payid.lower()) if account_id_type == "PAYID" else ("BSB", bsb, account_no)


@dataclass(frozen=True)
class _Parties:
    """Every recipient and sender the file names, read in two queries."""

    recipients: dict[str, dict[str, list[Recipient]]]  # Recipient field -> value -> rows
    senders: dict[str, Sender]  # by FlashFX id
    senders_by_nick: dict[str, list[Sender]]

    @classmethod
    def load(cls, rows: tuple[ParsedRow, ...]) -> _Parties:
        wanted = Q()
        for column, field in LOOKUPS.items():
            if values := {r.get(column) for r in rows} - {""}:
                wanted |= Q(**{f"{field}__in": values})
        recipients: dict[str, dict[str, list[Recipient]]] = {
            f: defaultdict(list) for f in LOOKUPS.values()
        }
        for recipient in Recipient.objects.filter(wanted) if wanted else ():
            for field in LOOKUPS.values():
                recipients[field][getattr(recipient, field)].append(recipient)
        names = {r.get("sender") for r in rows} - {""}
        senders: dict[str, Sender] = {}
        by_nick: dict[str, list[Sender]] = defaultdict(list)
        if names:
            for sender in Sender.objects.filter(Q(flashfx_id__in=names) | Q(nick_name__in=names)):
                senders[sender.flashfx_id] = sender
                by_nick[sender.nick_name].append(sender)
        return cls(recipients=recipients, senders=senders, senders_by_nick=by_nick)


def validate(parsed: ParsedFile, *, now: datetime | None = None) -> Validation:
    """Every row checked (a constant number of queries, whatever the row count): each problem
    as a CellError; the clean rows as BatchRows with their count and total."""
    now = now or timezone.now()
    currency = payout_policy().currency
    parties = _Parties.load(parsed.rows)
    checks = [_RowCheck(row, parties, currency) for row in parsed.rows]
    _flag_repeats(checks)
    _flag_paid_before(checks, since=now - timedelta(days=DUPLICATE_DAYS))
    errors = [e for check in checks for e in check.errors]
    return Validation(
        rows=tuple(check.clean() for check in checks if not check.errors),
        errors=tuple(sorted(errors, key=lambda e: e.row)),  # stable: each row's order kept
        checked=len(checks),
        currency=currency,
    )


class _RowCheck:
    """One row's checks: its values where they are good, a CellError for each that is not."""

    def __init__(self, row: ParsedRow, parties: _Parties, currency: str) -> None:
        self.row = row
        self.errors: list[CellError] = []
        self.currency = self._currency(row.get("currency"), currency)
        self.amount = self._amount(row.get("amount"))
        self.reference = row.get("reference")
        if problem := reference_problem(self.reference):
            self.fail("reference", problem)
            self.reference = ""
        self.reason = self._reason(row.get("reason"))
        self.sender = self._sender(row.get("sender"), parties)
        self.recipient: Recipient | None = None
        self.new_recipient: dict[str, Any] | None = None
        self.payee = self._recipient(parties)

    def fail(self, column: str, message: str) -> None:
        self.errors.append(CellError(row=self.row.number, column=column, message=message))

    @property
    def key(self) -> tuple[Payee, Decimal, str] | None:
        """What makes two payouts the same: payee, amount, reference (None: not all known)."""
        if self.payee and self.amount is not None and self.reference:
            return self.payee, self.amount, self.reference
        return None

    def clean(self) -> BatchRow:
        if self.amount is None or not (self.recipient or self.new_recipient):
            raise ValueError(f"row {self.row.number} is not complete: it was checked first")
        return BatchRow(
            row=self.row.number,
            amount=self.amount,
            currency=self.currency,
            reference=self.reference,
            reason=self.reason,
            recipient_pk=self.recipient.pk if self.recipient else None,
            recipient_flashfx_id=self.recipient.flashfx_id if self.recipient else "",
            new_recipient=self.new_recipient,
            sender_pk=self.sender.pk if self.sender else None,
        )

    def _currency(self, text: str, currency: str) -> str:
        if text and text.upper() != currency:
            self.fail(
                "currency",
                f"Payouts are in {currency} only (or leave it empty); "
                f"pay {text} with an international payment.",
            )
        return currency

    def _amount(self, text: str) -> Decimal | None:
        match = AMOUNT.fullmatch(text)
        if not text:
            self.fail("amount", "Give the amount, e.g. 1250.00.")
        elif "," in text:
            self.fail(
                "amount", "Write the amount without thousands separators: 1234.50, not 1,234.50."
            )
        elif text.lstrip("$").startswith("-"):
            self.fail("amount", "The amount must be more than zero.")
        elif not match:
            self.fail(
                "amount",
                "Write the amount as digits with at most two decimal places, e.g. 1250.00 "
                "(no currency sign other than a leading $).",
            )
        elif (places := -Decimal(match[1]).as_tuple().exponent) > 2:  # type: ignore[operator]
            self.fail("amount", f"At most two decimal places; this one has {places}.")
        elif (amount := Decimal(match[1])) <= 0:
            self.fail("amount", "The amount must be more than zero.")
        elif amount >= AMOUNT_LIMIT:
            self.fail("amount", "That amount is too large.")
        else:
            return amount.quantize(CENT)
        return None

    def _reason(self, text: str) -> str:
        if not text:
            return DEFAULT_REASON
        value = re.sub(r"[\s\-]+", "_", text).upper()
        if value not in Payout.Reason.values:
            self.fail(
                "reason",
                f"Unknown reason {text!r}: one of {', '.join(Payout.Reason.values)}, "
                f"or leave it empty for {DEFAULT_REASON}.",
            )
        return value

    def _sender(self, text: str, parties: _Parties) -> Sender | None:
        if not text:
            return None  # the batch's own sender
        sender = parties.senders.get(text)
        if sender is None:
            live = [
                s
                for s in parties.senders_by_nick.get(text, [])
                if s.deleted_at is None and s.flashfx_id
            ]
            if len(live) > 1:
                self.fail(
                    "sender",
                    f"{len(live)} senders have the nickname {text!r}: give the sender's "
                    f"FlashFX id instead ({', '.join(s.flashfx_id for s in live)}).",
                )
                return None
            sender = live[0] if live else None
        if sender is None:
            self.fail("sender", f"No sender has the FlashFX id or nickname {text!r}.")
        elif sender.deleted_at is not None:
            self.fail("sender", "This sender was deleted.")
        else:
            return sender
        return None

    def _recipient(self, parties: _Parties) -> Payee | None:
        row = self.row
        ways = [c for c in LOOKUPS if row.get(c)]
        if any(row.get(c) for c in INLINE):
            ways.append("bank details")
        if not ways:
            self.fail(
                "",
                "Name the recipient: recipient_id, recipient_external_id or recipient_nick_name, "
                "or bank details (account_name with bsb and account_no, or with payid).",
            )
            return None
        if len(ways) > 1:
            self.fail("", f"Name the recipient one way only; this row gives {' and '.join(ways)}.")
            return None
        if ways == ["bank details"]:
            return self._inline()
        column = ways[0]
        value = row.get(column)
        found = parties.recipients[LOOKUPS[column]].get(value, [])
        live = [r for r in found if r.deleted_at is None and r.flashfx_id]
        if not found:
            self.fail(column, f"No recipient has {column} {value!r}.")
        elif not live:
            self.fail(column, "This recipient was deleted.")
        elif len(live) > 1:
            self.fail(
                column,
                f"{len(live)} recipients have this {column.removeprefix('recipient_')}: "
                f"give recipient_id instead ({', '.join(r.flashfx_id for r in live)}).",
            )
        elif live[0].account_id_type not in ACCOUNT_TYPES or live[0].currency != self.currency:
            self.fail(
                column,
                f"Payouts go to Australian {self.currency} accounts (BSB and account number, "
                "or PayID); pay this recipient with an international payment.",
            )
        else:
            self.recipient = r = live[0]
            return _payee(r.account_id_type, r.bsb, r.account_no, r.payid)
        return None

    def _inline(self) -> Payee | None:
        """Bank details for a recipient to be created: RecipientForm's rules, FlashFX's."""
        get = self.row.get
        if get("payid") and (get("bsb") or get("account_no")):
            self.fail("payid", "Give a BSB and account number, or a PayID, not both.")
            return None
        account_id_type = "PAYID" if get("payid") else "BSB"
        if not get("account_name"):
            self.fail("account_name", "Give the name on the account.")
        form = RecipientForm(
            data={**{f: get(c) for f, c in FORM_COLUMNS.items()}, "currency": self.currency},
            account_id_type=account_id_type,
        )
        if not form.is_valid():
            for field, problems in form.errors.as_data().items():
                if field not in FORM_COLUMNS:
                    continue  # first and last name: only missing when account_name is
                column = FORM_COLUMNS[field]
                for problem in problems:
                    self.fail(
                        column,
                        f"Give the {column}."
                        if problem.code == "required"
                        else problem.messages[0],
                    )
            return None
        self.new_recipient = form.recipient_fields()
        d = self.new_recipient
        return _payee(
            account_id_type, d.get("bsb", ""), d.get("account_no", ""), d.get("payid", "")
        )


def _flag_repeats(checks: list[_RowCheck]) -> None:
    """Rows of the file that pay the same payee the same amount with the same reference: each
    one is told the others."""
    rows_by_key: dict[tuple[Payee, Decimal, str], list[int]] = defaultdict(list)
    for check in checks:
        if key := check.key:
            rows_by_key[key].append(check.row.number)
    for check in checks:
        rows = rows_by_key.get(check.key) if check.key else None
        if rows and len(rows) > 1:
            others = [str(n) for n in rows if n != check.row.number]
            check.fail(
                "reference",
                f"Same recipient, amount and reference as row{'s' * (len(others) > 1)} "
                f"{_listed(others)}: give each payout its own reference, or remove the copy.",
            )


def _flag_paid_before(checks: list[_RowCheck], *, since: datetime) -> None:
    """Rows that repeat a payout of the last DUPLICATE_DAYS (not one that never paid): one query."""
    keyed = [c for c in checks if c.key]
    if not keyed:
        return
    earlier = (
        Payout.objects.filter(created_at__gte=since, reference__in={c.reference for c in keyed})
        .exclude(state__in=NOT_PAID)
        .order_by("created_at")
        .values_list(
            "code",
            "state",
            "created_at",
            "amount",
            "reference",
            "recipient__account_id_type",
            "recipient__bsb",
            "recipient__account_no",
            "recipient__payid",
        )
    )
    latest: dict[tuple[Payee, Decimal, str], tuple[str, str, datetime]] = {}
    for code, state, created_at, amount, reference, *account in earlier:
        latest[(_payee(*account), Decimal(amount).quantize(CENT), reference)] = (
            code,
            state,
            created_at,
        )
    for check in keyed:
        if found := latest.get(check.key):  # type: ignore[arg-type]
            code, state, created_at = found
            check.fail(
                "reference",
                f"Payout {code} ({Payout.State(state).label.lower()}, started "
                f"{created_at:%Y-%m-%d}) already pays this recipient this amount with this "
                "reference; if this one is meant too, give it a reference of its own.",
            )
