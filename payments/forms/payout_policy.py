"""The payout approval policy form (/payouts/policy/): shape only; the rules are in
services/payout_policy.py."""

from __future__ import annotations

from django import forms

from ..services.payout_policy import MAX_TTL_HOURS, Tier, parse_tiers


class PayoutPolicyForm(forms.Form):
    tiers = forms.CharField(
        label="Approval tiers",
        max_length=500,
        help_text=(
            "Comma-separated <up to amount>:<approvers>, amounts in AUD and rising, ending with "
            "*:<approvers> for everything above: 10000.00:1,*:2 is one approver up to AUD "
            "10,000.00 and two above. Approvers are always others than the maker, and distinct."
        ),
        widget=forms.TextInput(attrs={"size": 40, "spellcheck": "false"}),
    )
    ttl_hours = forms.IntegerField(
        label="Approvals expire after (hours)", min_value=1, max_value=MAX_TTL_HOURS
    )

    def clean_tiers(self) -> tuple[Tier, ...]:
        return parse_tiers(self.cleaned_data["tiers"], name="Tiers", error=forms.ValidationError)
