"""The reject (refund) form of the deposit page: shape only; the rules are in services/refunds.py."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from ..models import Deposit, DepositRefund

Reason = DepositRefund.Reason


class RefundForm(forms.Form):
    reason = forms.ChoiceField(
        label="Reason",
        choices=[("", "Choose a reason")] + list(Reason.choices),
        error_messages={"required": "Choose a reason for the rejection."},
    )
    reason_text = forms.CharField(
        label="In your words",
        required=False,
        max_length=200,
        help_text="Needed when the reason is \u201cOther\u201d. Sent to FlashFX with the refund.",
        widget=forms.TextInput(attrs={"size": 60}),
    )
    amount = forms.DecimalField(
        label="Amount to refund",
        max_digits=18,
        decimal_places=2,
        error_messages={
            "required": "Say how much to refund.",
            "invalid": "The amount must be a number, like 1250.00.",
            "max_decimal_places": "The amount can have at most two decimal places.",
        },
        widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 14}),
    )

    def __init__(self, *args, deposit: Deposit, **kwargs) -> None:
        kwargs.setdefault("initial", {"amount": deposit.amount})
        super().__init__(*args, **kwargs)
        self.deposit = deposit
        self.fields["amount"].help_text = (
            f"{deposit.currency}; the full {deposit.amount} by default, or less for a partial "
            "refund."
        )

    def clean_reason_text(self) -> str:
        text = " ".join(self.cleaned_data["reason_text"].split())
        if text and not text.isascii():
            raise forms.ValidationError(
                "FlashFX accepts only plain letters, digits and punctuation (no accents or "
                "symbols) in the reason."
            )
        return text

    def clean_amount(self) -> Decimal:
        amount: Decimal = self.cleaned_data["amount"]
        if amount <= 0:
            raise forms.ValidationError("The amount to refund must be more than zero.")
        if amount > self.deposit.amount:
            raise forms.ValidationError(
                f"The amount to refund cannot be more than the deposit's "
                f"{self.deposit.currency} {self.deposit.amount}."
            )
        return amount

    def clean(self) -> dict:
        data = super().clean()
        if data.get("reason") == Reason.OTHER and not data.get("reason_text"):
            self.add_error(
                "reason_text", "Say why, in a few words, when the reason is \u201cOther\u201d."
            )
        return data
