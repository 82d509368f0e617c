"""The international payment form (/payments/new/) and the live quote's inputs: shape only.
The rules are in services/payment_orders.py, which checks everything again (server-side
validation is the rule; the live quote only helps).

The currency the recipient gets is the recipient account's own (FlashFX refuses any other,
docs/flashfx.md §3.6.1); the amount is on either side (`size` with `currency`, §3.6.1): the form
asks which side and the view passes that side's currency code.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from parties import selectors as parties
from parties.models import Recipient

from ..models import PaymentOrder
from ..services.payment_orders import FROM_CURRENCIES, LOCAL_ACCOUNT_TYPES, REFERENCE_MAX
from .payouts import PayoutForm

SIDES = (
    ("from", "Sent (in the currency paid from)"),
    ("to", "Received (in the recipient's currency)"),
)


def bank_details_words(recipient: Recipient) -> str:
    """How a recipient abroad's account reads in a choice and on the page."""
    words = f"IBAN {recipient.iban}" if recipient.iban else f"account {recipient.account_no}"
    if recipient.bic:
        words += f" BIC {recipient.bic}"
    return words


class RecipientAbroadChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Recipient) -> str:
        label = f"{obj.name} \u2014 {bank_details_words(obj)} ({obj.currency}"
        label += f", {obj.country})" if obj.country else ")"
        if parties.recipient_cooling_until(obj):
            label += " (new bank details)"
        return label


class QuoteInputsForm(forms.Form):
    """What a quote needs: the recipient (its currency is the to-currency), the currency paid
    from, the amount and its side. The live quote (GET) reads only these."""

    recipient = RecipientAbroadChoice(
        label="Recipient abroad",
        queryset=Recipient.objects.none(),
        empty_label="Choose a recipient",
        error_messages={"required": "Choose a recipient."},
    )
    from_currency = forms.ChoiceField(
        label="Pay from the balance in",
        choices=[(c, c) for c in FROM_CURRENCIES],
        initial="AUD",
        error_messages={"invalid_choice": "Choose a currency FlashFX pays from."},
    )
    size = forms.DecimalField(
        label="Amount",
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0.01"),
        error_messages={
            "required": "Say how much to pay.",
            "invalid": "The amount must be a number, like 1250.00.",
            "max_decimal_places": "The amount can have at most two decimal places.",
            "min_value": "The amount must be more than zero.",
        },
        widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 14, "autocomplete": "off"}),
    )
    size_side = forms.ChoiceField(
        label="The amount is",
        choices=SIDES,
        initial="from",
        error_messages={"invalid_choice": "Say whether the amount is sent or received."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["recipient"].queryset = (
            Recipient.objects.filter(deleted_at=None)
            .exclude(flashfx_id="")
            .exclude(account_id_type__in=LOCAL_ACCOUNT_TYPES)
            .order_by("display_name", "company_name", "last_name", "id")
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        recipient = data.get("recipient")
        if recipient is not None:
            data["to_currency"] = recipient.currency
            if data.get("from_currency") == recipient.currency:
                self.add_error(
                    "from_currency",
                    f"The recipient's account is in {recipient.currency}: pay it from another "
                    "currency, or make it a payout.",
                )
            side = data.get("size_side")
            if side:
                data["size_currency"] = (
                    data.get("from_currency") if side == "from" else recipient.currency
                )
        return data


class PaymentOrderForm(QuoteInputsForm):
    """The whole payment: the quote's inputs, who it is from, why, and the reference."""

    # sender and sub_client: the payout form's own fields (__init__), the same parties offered.
    reason = forms.ChoiceField(
        label="Reason",
        choices=[("", "Choose a reason")] + list(PaymentOrder.Reason.choices),
        error_messages={"required": "Choose the reason for the payment."},
    )
    source_of_funds = forms.ChoiceField(
        label="Source of funds",
        choices=[("", "Choose the source of funds")] + list(PaymentOrder.SourceOfFunds.choices),
        error_messages={"required": "Say where the money comes from."},
    )
    reference = forms.CharField(
        label="Reference",
        max_length=REFERENCE_MAX,
        help_text="What the recipient's bank shows; plain text.",
        error_messages={
            "required": "Give a reference: the recipient sees it.",
            "max_length": f"At most {REFERENCE_MAX} characters.",
        },
        widget=forms.TextInput(attrs={"size": 40, "autocomplete": "off"}),
    )
    quote_token = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        payout_fields = PayoutForm().fields
        for name in ("sub_client", "sender"):
            self.fields = {name: payout_fields[name], **self.fields}
        self.fields["sender"].empty_label = "The company itself"  # neither: the company sends it

    def clean_reference(self) -> str:
        return self.cleaned_data["reference"].strip()
