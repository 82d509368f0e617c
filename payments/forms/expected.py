"""Expected payments: one by form, or many from a CSV file (docs/samples/expected-payments.csv).

The forms check shape (a name, an amount with cents, a date, a sub-client that exists); the
service (payments/services/matching.py: expected_payments_record) checks the rules and saves.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q

from ..models import ExpectedPayment
from ..services.matching import MAX_BATCH

SubClient = ExpectedPayment._meta.get_field("sub_client").related_model

MAX_UPLOAD_BYTES = 1024 * 1024  # 1 MiB: about 10,000 rows of this shape, ten times MAX_ROWS
MAX_ROWS = MAX_BATCH
COLUMNS = ("payer_name", "amount", "currency", "reference", "due_date", "sub_client")
REQUIRED_COLUMNS = ("payer_name", "amount", "due_date")
DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y"]  # ISO, or the Australian day first


def sub_client_find(text: str) -> Any:
    """The sub-client named by its FlashFX id, or by its name (full or legal, any case).

    ValidationError when none is, or more than one has that name."""
    text = text.strip()
    found = list(
        SubClient.objects.filter(
            Q(flashfx_id=text) | Q(full_name__iexact=text) | Q(legal_name__iexact=text)
        )[:2]
    )
    by_id = [s for s in found if s.flashfx_id == text]
    if by_id:
        return by_id[0]
    if not found:
        raise ValidationError(f"No sub-client has the FlashFX id or name “{text}”.")
    if len(found) > 1:
        raise ValidationError(
            f"More than one sub-client is named “{text}”; give its FlashFX id instead."
        )
    return found[0]


class ExpectedPaymentForm(forms.Form):
    payer_name = forms.CharField(label="Payer name", max_length=300)
    amount = forms.DecimalField(
        label="Amount",
        max_digits=18,
        decimal_places=2,
        min_value=Decimal("0.01"),
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    currency = forms.CharField(label="Currency", max_length=3, min_length=3, initial="AUD")
    reference = forms.CharField(label="Reference", max_length=300, required=False)
    due_on = forms.DateField(
        label="Due date",
        input_formats=DATE_FORMATS,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    sub_client = forms.CharField(
        label="Sub-client (FlashFX id or name)",
        max_length=300,
        required=False,
        help_text="Leave empty for a payment to the company's own account.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "expected-%s")
        super().__init__(*args, **kwargs)

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"].strip().upper()
        if not currency.isalpha():
            raise ValidationError("Give the currency as a three-letter code such as AUD.")
        return currency

    def clean_sub_client(self) -> Any:
        text = self.cleaned_data.get("sub_client", "").strip()
        return sub_client_find(text) if text else None

    def row(self) -> dict[str, Any]:
        """The cleaned values, as expected_payments_record takes them."""
        return dict(self.cleaned_data)


def _amount_text(text: str) -> str:
    """ "$1,234.50" as a spreadsheet writes it is 1234.50."""
    return text.strip().replace(",", "").removeprefix("$").strip()


class ExpectedPaymentUploadForm(forms.Form):
    """A CSV file of expected payments: all rows good, or nothing saved and every bad row told."""

    file = forms.FileField(
        label="CSV file",
        help_text=(
            "UTF-8, a header row with payer_name, amount, due_date (YYYY-MM-DD or DD/MM/YYYY) "
            "and optionally currency (AUD if empty), reference and sub_client (FlashFX id or "
            f"name); at most {MAX_ROWS} rows."
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "upload-%s")
        super().__init__(*args, **kwargs)
        self.rows: list[dict[str, Any]] = []

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise ValidationError(
                f"The file is {upload.size:,} bytes; at most {MAX_UPLOAD_BYTES:,} can be uploaded."
            )
        raw = upload.read()
        try:
            text = raw.decode("utf-8-sig")  # with or without the byte-order mark Excel writes
        except UnicodeDecodeError as exc:
            raise ValidationError(
                "The file is not UTF-8 text; save it from the spreadsheet as “CSV UTF-8”."
            ) from exc
        self.rows = self._parse(text)
        return upload

    def _parse(self, text: str) -> list[dict[str, Any]]:
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = next(reader)
        except StopIteration:
            raise ValidationError(
                "The file is empty: it needs a header row and a row per payment."
            ) from None
        except csv.Error as exc:
            raise ValidationError(f"Line 1: {exc}.") from exc
        names = [h.strip().lower() for h in header]
        unknown = [n for n in names if n not in COLUMNS]
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if unknown or missing or len(set(names)) != len(names):
            problems = []
            if missing:
                problems.append("it lacks " + ", ".join(missing))
            if unknown:
                problems.append(
                    "it has unknown columns " + ", ".join(n or "(blank)" for n in unknown)
                )
            if len(set(names)) != len(names):
                problems.append("a column is named twice")
            raise ValidationError(
                "Line 1 must be the header row with the columns "
                + ", ".join(COLUMNS)
                + ": "
                + "; ".join(problems)
                + "."
            )
        rows: list[dict[str, Any]] = []
        errors: list[str] = []
        try:
            for values in reader:
                line = reader.line_num
                if not any(v.strip() for v in values):
                    continue  # a blank line
                if len(rows) + len(errors) >= MAX_ROWS:
                    raise ValidationError(f"The file has more than {MAX_ROWS} rows; split it.")
                if len(values) != len(names):
                    errors.append(
                        f"Line {line}: {len(values)} values where the header has {len(names)}."
                    )
                    continue
                data = dict(zip(names, (v.strip() for v in values), strict=True))
                form = ExpectedPaymentForm(
                    data={
                        "payer_name": data.get("payer_name", ""),
                        "amount": _amount_text(data.get("amount", "")),
                        "currency": data.get("currency") or "AUD",
                        "reference": data.get("reference", ""),
                        "due_on": data.get("due_date", ""),
                        "sub_client": data.get("sub_client", ""),
                    }
                )
                if form.is_valid():
                    rows.append(form.row())
                    continue
                for field, messages in form.errors.items():
                    label = "due_date" if field == "due_on" else field
                    for message in messages:
                        errors.append(f"Line {line}: {label}: {message}")
        except csv.Error as exc:
            errors.append(f"Line {reader.line_num}: {exc}.")
        if errors:
            raise ValidationError(errors)
        if not rows:
            raise ValidationError("The file has a header row but no payments.")
        return rows
