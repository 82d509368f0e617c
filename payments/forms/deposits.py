"""The deposit queue's filter form (GET): it checks shape; the selector reads."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured

from parties.models import SubClient

from ..models import Deposit
from ..selectors.deposits import MIN_SEARCH, SORTS, QueueFilters

STATUS_CHOICES = [("", "any")] + [(s, s) for s in Deposit.STATUS_ORDER.ranks]
REVIEW_CHOICES = [("", "any")] + list(Deposit.Review.choices)
SORT_CHOICES = [
    ("newest", "Newest first"),
    ("oldest", "Oldest first"),
    ("largest", "Largest amount first"),
    ("smallest", "Smallest amount first"),
]
if {c for c, _ in SORT_CHOICES} != set(SORTS):  # a sort without a label, or a label without one
    raise ImproperlyConfigured("SORT_CHOICES and the selector's SORTS name different sorts")


class SubClientChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: SubClient) -> str:
        return obj.full_name or obj.legal_name or obj.flashfx_id


class DepositQueueForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        min_length=MIN_SEARCH,
        max_length=100,
        strip=True,
        help_text=(
            f"At least {MIN_SEARCH} characters: payer name, BSB or account, reference, "
            "FlashFX id or external id."
        ),
    )
    status = forms.ChoiceField(label="FlashFX status", choices=STATUS_CHOICES, required=False)
    review = forms.ChoiceField(label="Review", choices=REVIEW_CHOICES, required=False)
    received_from = forms.DateField(
        label="Received from", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    received_to = forms.DateField(
        label="Received to", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    amount_min = forms.DecimalField(
        label="Amount from", required=False, min_value=0, max_digits=18, decimal_places=2
    )
    amount_max = forms.DecimalField(
        label="Amount to", required=False, min_value=0, max_digits=18, decimal_places=2
    )
    sub_client = SubClientChoice(
        label="Sub-client",
        queryset=SubClient.objects.order_by("full_name", "id"),
        required=False,
        empty_label="any",
    )
    assignee = forms.ChoiceField(label="Assignee", required=False)
    sort = forms.ChoiceField(label="Sort", choices=SORT_CHOICES, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        members = (
            get_user_model()
            .objects.filter(
                is_active=True,
                groups__permissions__codename="review_deposit",
                groups__permissions__content_type__app_label="payments",
            )
            .distinct()
            .order_by("username")
        )
        self.fields["assignee"].choices = [
            ("", "anyone"),
            ("me", "me"),
            ("nobody", "nobody"),
        ] + [(str(u.pk), u.get_username()) for u in members]

    def clean(self):
        data = super().clean()
        start, end = data.get("received_from"), data.get("received_to")
        if start and end and start > end:
            self.add_error("received_to", "The end date is before the start date.")
        low, high = data.get("amount_min"), data.get("amount_max")
        if low is not None and high is not None and low > high:
            self.add_error("amount_max", "The upper amount is below the lower one.")
        return data

    def filters(self, *, user_id: int | None) -> QueueFilters:
        """The valid filters (call after is_valid())."""
        d = self.cleaned_data
        sub_client = d.get("sub_client")
        return QueueFilters(
            status=d.get("status") or "",
            review=d.get("review") or "",
            received_from=d.get("received_from"),
            received_to=d.get("received_to"),
            amount_min=d.get("amount_min"),
            amount_max=d.get("amount_max"),
            sub_client_id=sub_client.pk if sub_client else None,
            assignee=d.get("assignee") or "",
            q=d.get("q") or "",
            sort=d.get("sort") or "newest",
            user_id=user_id,
        )
