"""The batch payout forms (/payouts/batches/new/): the file, then the submission of a checked
file. Shape only: reading and checking the file, and every rule of a batch, are in
payments/services/payout_batches.py (docs/batch-payouts.md)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from parties.models import Sender

from ..models import PayoutBatchFile
from .payouts import SenderChoice


class BatchUploadForm(forms.Form):
    file = forms.FileField(
        label="Batch file (CSV or Excel .xlsx)",
        help_text=(
            f"Row 1 names the columns; at most {settings.BATCH_MAX_ROWS:,} payouts. Every row "
            "is checked before anything is created."
        ),
        error_messages={
            "required": "Choose the file to upload.",
            "empty": "The file is empty.",
        },
        widget=forms.ClearableFileInput(
            attrs={
                "accept": ".csv,.xlsx,text/csv,"
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "upload-%s")
        super().__init__(*args, **kwargs)


class BatchSubmitForm(forms.Form):
    """Submit a file this member uploaded, with the sender for the rows that name none; the
    "drop bad rows" button sends drop_bad_rows=1."""

    file = forms.ModelChoiceField(
        queryset=PayoutBatchFile.objects.none(),
        widget=forms.HiddenInput,
        error_messages={"invalid_choice": "This file is not one of yours: upload it again."},
    )
    sender = SenderChoice(
        label="Sender (\u201cPayment from \u2026\u201d) for the rows that name none",
        queryset=Sender.objects.none(),
        required=False,
        empty_label="None: every row names its sender",
    )
    drop_bad_rows = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "submit-%s")
        super().__init__(*args, **kwargs)
        self.fields["file"].queryset = PayoutBatchFile.objects.filter(uploaded_by=user)
        self.fields["sender"].queryset = (
            Sender.objects.filter(deleted_at=None)
            .exclude(flashfx_id="")
            .order_by("company_name", "last_name", "id")
        )


class BatchDeclineForm(forms.Form):
    note = forms.CharField(label="Why decline", max_length=500, required=False)
