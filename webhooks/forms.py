"""The webhook event list's filter form (GET): it checks the query string's shape and turns it
into EventFilters; webhooks/selectors.py reads."""

from __future__ import annotations

from django import forms

from .models import InboundEvent
from .selectors import EventFilters

STATUS_CHOICES = [("", "any"), *InboundEvent.Status.choices]


class EventFilterForm(forms.Form):
    status = forms.ChoiceField(label="Status", choices=STATUS_CHOICES, required=False)
    event = forms.CharField(
        label="Event type",
        required=False,
        max_length=64,
        strip=True,
        widget=forms.TextInput(attrs={"list": "event-types", "autocomplete": "off"}),
        help_text="Exactly, e.g. withdrawal_completed.",
    )
    entity_id = forms.CharField(
        label="Entity id",
        required=False,
        max_length=64,
        strip=True,
        help_text="FlashFX's id of the deposit, payout or payment, exactly.",
    )
    received_from = forms.DateField(
        label="Received from", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    received_to = forms.DateField(
        label="Received to", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,
        strip=True,
        help_text="Part of a request id or an entity id.",
    )

    def clean(self):
        data = super().clean()
        start, end = data.get("received_from"), data.get("received_to")
        if start and end and start > end:
            self.add_error("received_to", "The end date is before the start date.")
        return data

    def filters(self) -> EventFilters:
        """The valid filters (call after is_valid()); no filter for an unbound form."""
        if not self.is_bound:
            return EventFilters()
        d = self.cleaned_data
        return EventFilters(
            status=d.get("status") or "",
            event=d.get("event") or "",
            entity_id=d.get("entity_id") or "",
            received_from=d.get("received_from"),
            received_to=d.get("received_to"),
            q=d.get("q") or "",
        )


FILTER_KEYS = tuple(EventFilterForm.base_fields)


def event_filters_from_query(query) -> EventFilters | None:
    """The filters a query string (request.GET) names, or None when they are not valid: what the
    list shows and what an export of it must select."""
    form = EventFilterForm(query or None)
    if form.is_bound and not form.is_valid():
        return None
    return form.filters()
