"""The payout form (new and edit): shape only; the rules are in services/payouts.py, which
checks everything again (server-side validation is the rule; the live counter only helps)."""

from __future__ import annotations

from django import forms

from parties import selectors as parties
from parties.models import Recipient, Sender, SubClient

from ..models import Payout
from ..services.payouts import ACCOUNT_TYPES, REFERENCE_MAX


class RecipientChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Recipient) -> str:
        name = obj.display_name or obj.company_name or f"{obj.first_name} {obj.last_name}".strip()
        if obj.account_id_type == "PAYID":
            label = f"{name} \u2014 PayID {obj.payid}"
        else:
            label = f"{name} \u2014 BSB {obj.bsb} account {obj.account_no}"
        if parties.recipient_cooling_until(obj):
            label += " (new bank details)"
        return label


class SenderChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Sender) -> str:
        return obj.name or obj.flashfx_id


class PayoutForm(forms.Form):
    recipient = RecipientChoice(
        label="Recipient",
        queryset=Recipient.objects.none(),
        empty_label="Choose a recipient",
        error_messages={"required": "Choose a recipient."},
    )
    amount = forms.DecimalField(
        label="Amount",
        max_digits=14,
        decimal_places=2,
        error_messages={
            "required": "Say how much to pay.",
            "invalid": "The amount must be a number, like 1250.00.",
            "max_decimal_places": "The amount can have at most two decimal places.",
        },
        widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 14}),
    )
    currency = forms.ChoiceField(label="Currency", choices=[("AUD", "AUD")], initial="AUD")
    reference = forms.CharField(
        label="Reference",
        max_length=64,  # the service says what is wrong with a longer one, in words
        help_text=f"What the beneficiary sees on their statement: at most {REFERENCE_MAX} "
        "characters (Direct Entry), plain ASCII.",
        error_messages={"required": "Give a reference: the beneficiary sees it."},
        widget=forms.TextInput(
            attrs={"size": 24, "data-count-limit": REFERENCE_MAX, "autocomplete": "off"}
        ),
    )
    sender = SenderChoice(
        label="Sender (\u201cPayment from \u2026\u201d)",
        queryset=Sender.objects.none(),
        required=False,
        empty_label="None: the sub-client below is the sender",
    )
    sub_client = forms.ModelChoiceField(
        label="Sub-client (optional)",
        queryset=SubClient.objects.none(),
        required=False,
        empty_label="None",
    )
    reason = forms.ChoiceField(
        label="Reason",
        choices=[("", "Choose a reason")] + list(Payout.Reason.choices),
        error_messages={"required": "Choose the reason for the payout."},
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["recipient"].queryset = (
            Recipient.objects.filter(
                account_id_type__in=ACCOUNT_TYPES, currency="AUD", deleted_at=None
            )
            .exclude(flashfx_id="")
            .order_by("display_name", "id")
        )
        self.fields["sender"].queryset = (
            Sender.objects.filter(deleted_at=None)
            .exclude(flashfx_id="")
            .order_by("company_name", "last_name", "id")
        )
        self.fields["sub_client"].queryset = SubClient.objects.exclude(flashfx_id="").order_by(
            "full_name", "id"
        )
        self.fields["sub_client"].label_from_instance = lambda sc: sc.full_name or sc.flashfx_id

    def clean_reference(self) -> str:
        return self.cleaned_data["reference"].strip()

    @classmethod
    def initial_of(cls, payout: Payout) -> dict:
        return {
            "recipient": payout.recipient_id,
            "amount": payout.amount,
            "currency": payout.currency,
            "reference": payout.reference,
            "sender": payout.sender_id,
            "sub_client": payout.sub_client_id,
            "reason": payout.reason,
        }
