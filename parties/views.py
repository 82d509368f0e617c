"""Staff pages for parties (/parties/): recipients, senders and sub-clients.

Lists search and page by cursor with the filters in the URL (one view for the page and its
htmx fragment, as the deposit queue). Creating, editing and deleting happen at FlashFX through
parties/services/; FlashFX's refusal comes back on the form field it names. Every form is a
plain POST that works without JavaScript (Post/Redirect/Get on success).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django.views.decorators.vary import vary_on_headers

from backoffice.http import is_fragment_request

from . import selectors
from .forms.parties import SearchForm, SenderForm, SubClientForm
from .forms.recipients import ACCOUNT_TYPES, AccountTypeForm, RecipientForm
from .models import Recipient, Sender
from .services import payee
from .services import recipients as recipient_services
from .services import senders as sender_services
from .services import sub_clients as sub_client_services
from .services.calls import PartyError

GET_POST = require_http_methods(["GET", "HEAD", "POST"])
MANAGE_RECIPIENT = "parties.manage_recipient"
MANAGE_SENDER = "parties.manage_sender"
CREATE_SUB_CLIENT = "parties.create_subclient"


def _refused(form: Any, exc: PartyError) -> None:
    """FlashFX's refusal (or our failure to ask) on the field it names, else above the form."""
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, exc.message)


@require_safe
@permission_required("parties.view_sender", raise_exception=True)
def parties(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "parties/index.html",
        {"title": "Parties", "counts": selectors.party_counts()},
    )


def _list(
    request: HttpRequest,
    *,
    title: str,
    page_of: Callable[..., selectors.Page],
    rows_template: str,
    search_help: str,
    new_url: str | None,
    new_label: str,
    each: Callable[[Any], None] | None = None,
    export_list: str = "",
) -> HttpResponse:
    form = SearchForm(request.GET or None)
    page = None
    if not request.GET or form.is_valid():
        q = form.cleaned_data.get("q", "") if form.is_bound else ""
        try:
            page = page_of(q=q, cursor=request.GET.get("cursor", ""))
        except selectors.InvalidCursor:
            messages.warning(request, "That page link was not valid; here is the first page.")
            page = page_of(q=q)
    if page is not None and each is not None:
        for row in page.rows:
            each(row)
    query = request.GET.copy()
    query.pop("cursor", None)
    context = {
        "title": title,
        "form": form,
        "page": page,
        "filter_query": query.urlencode(),
        "rows_template": rows_template,
        "search_help": search_help,
        "new_url": new_url,
        "new_label": new_label,
        "export_list": export_list,  # the export panel's list (payments/exports/lists.py)
        "fragment": is_fragment_request(request),
    }
    return render(request, rows_template if context["fragment"] else "parties/list.html", context)


# --- Recipients ---------------------------------------------------------------------------------


@require_safe
@permission_required("parties.view_recipient", raise_exception=True)
@vary_on_headers("HX-Request")
def recipients(request: HttpRequest) -> HttpResponse:
    can_manage = request.user.has_perm(MANAGE_RECIPIENT)
    return _list(
        request,
        title="Recipients",
        page_of=selectors.recipient_page,
        export_list="recipients",
        rows_template="parties/_recipient_rows.html",
        search_help="Name, BSB, account number, PayID, IBAN, FlashFX id or external id.",
        new_url="parties:recipient-new" if can_manage else None,
        new_label="New recipient",
        each=_cooling,
    )


def _cooling(row: Recipient) -> None:
    row.cooling_until = selectors.recipient_cooling_until(row)


@GET_POST
@permission_required(MANAGE_RECIPIENT, raise_exception=True)
@vary_on_headers("HX-Request")
def recipient_new(request: HttpRequest) -> HttpResponse:
    """Step one picks the account type (GET ?type=); the form then asks what FlashFX needs
    for it. The type chooser swaps the form in place with htmx, or reloads the page."""
    chooser = AccountTypeForm(request.GET if "type" in request.GET else None)
    account_id_type = request.POST.get("account_id_type") or (
        chooser.cleaned_data["type"] if chooser.is_bound and chooser.is_valid() else "BSB"
    )
    if account_id_type not in ACCOUNT_TYPES:
        account_id_type = "BSB"
    if not chooser.is_bound:
        chooser = AccountTypeForm(initial={"type": account_id_type})
    form = RecipientForm(request.POST or None, account_id_type=account_id_type)
    if request.method == "POST" and form.is_valid():
        try:
            recipient = recipient_services.recipient_create(
                fields=form.recipient_fields(), actor=request.user
            )
        except PartyError as exc:
            _refused(form, exc)
        else:
            messages.success(request, f"Recipient {recipient.name} created at FlashFX.")
            return redirect("parties:recipient", flashfx_id=recipient.flashfx_id)
    context = {
        "title": "New recipient",
        "chooser": chooser,
        "form": form,
        "account_id_type": account_id_type,
        "account_label": ACCOUNT_TYPES[account_id_type][0],
    }
    if is_fragment_request(request) and request.method == "GET":
        return render(request, "parties/_recipient_form.html", context)
    return render(request, "parties/recipient_new.html", context)


@require_safe
@permission_required("parties.view_recipient", raise_exception=True)
def recipient(request: HttpRequest, flashfx_id: str) -> HttpResponse:
    obj = get_object_or_404(Recipient.objects.flashfx_id(flashfx_id))
    return render(
        request,
        "parties/recipient_detail.html",
        {
            "title": f"Recipient {obj.name}",
            "recipient": obj,
            "account_label": ACCOUNT_TYPES.get(obj.account_id_type, (obj.account_id_type,))[0],
            "cooling_until": selectors.recipient_cooling_until(obj),
            "payee_check": selectors.payee_check_latest(obj),
            "payee_checks": list(obj.payee_checks.all()[:10]),
            "can_manage": request.user.has_perm(MANAGE_RECIPIENT) and obj.deleted_at is None,
        },
    )


@GET_POST
@permission_required(MANAGE_RECIPIENT, raise_exception=True)
def recipient_edit(request: HttpRequest, flashfx_id: str) -> HttpResponse:
    obj = get_object_or_404(Recipient.objects.flashfx_id(flashfx_id), deleted_at__isnull=True)
    if obj.account_id_type not in ACCOUNT_TYPES:
        messages.error(request, f"Account type {obj.account_id_type} cannot be edited here.")
        return redirect("parties:recipient", flashfx_id=obj.flashfx_id)
    form = RecipientForm(
        request.POST or None,
        initial=RecipientForm.initial_from(obj),
        account_id_type=obj.account_id_type,
        editing=True,
    )
    return _edit(
        request,
        obj,
        form,
        kind="recipient",
        update=lambda: recipient_services.recipient_update(
            recipient=obj, fields=form.recipient_fields(), actor=request.user
        ),
        note=ACCOUNT_TYPES[obj.account_id_type][0]
        + ". The account type cannot change; for another kind of account, create a new recipient.",
    )


def _edit(
    request: HttpRequest,
    obj: Recipient | Sender,
    form: Any,
    *,
    kind: str,
    update: Callable[[], Recipient | Sender],
    note: str = "",
) -> HttpResponse:
    """Change a recipient or a sender at FlashFX from a valid POST; FlashFX's refusal goes
    on the field it names and the form is shown again."""
    if request.method == "POST" and form.is_valid():
        try:
            obj = update()
        except PartyError as exc:
            _refused(form, exc)
        else:
            messages.success(request, f"{kind.capitalize()} changed at FlashFX.")
            return redirect(f"parties:{kind}", flashfx_id=obj.flashfx_id)
    return render(
        request,
        "parties/party_edit.html",
        {
            "title": f"Edit {kind} {obj.name}",
            "form": form,
            "back_url": reverse(f"parties:{kind}", args=[obj.flashfx_id]),
            "kind": kind,
            "note": note,
        },
    )


@require_POST
@permission_required(MANAGE_RECIPIENT, raise_exception=True)
def recipient_check_payee(request: HttpRequest, flashfx_id: str) -> HttpResponse:
    obj = get_object_or_404(Recipient.objects.flashfx_id(flashfx_id))
    try:
        check = payee.payee_check_again(recipient=obj, actor=request.user)
    except PartyError as exc:
        messages.error(request, exc.message)
    else:
        if check.failed:
            messages.warning(request, f"The payee check could not be made: {check.error_message}")
        else:
            messages.success(request, f"Payee checked again: {check.code}.")
    return redirect("parties:recipient", flashfx_id=obj.flashfx_id)


@GET_POST
@permission_required(MANAGE_RECIPIENT, raise_exception=True)
def recipient_delete(request: HttpRequest, flashfx_id: str) -> HttpResponse:
    obj = get_object_or_404(Recipient.objects.flashfx_id(flashfx_id), deleted_at__isnull=True)
    return _delete(
        request,
        obj,
        kind="recipient",
        delete=lambda: recipient_services.recipient_delete(recipient=obj, actor=request.user),
    )


def _delete(
    request: HttpRequest, obj: Recipient | Sender, *, kind: str, delete: Callable[[], Any]
) -> HttpResponse:
    """Delete a recipient or a sender at FlashFX on POST; on GET, ask to confirm."""
    detail = reverse(f"parties:{kind}", args=[obj.flashfx_id])
    if request.method == "POST":
        try:
            delete()
        except PartyError as exc:
            messages.error(request, exc.message)
            return redirect(detail)
        messages.success(request, f"{kind.capitalize()} {obj.name} deleted at FlashFX.")
        return redirect(f"parties:{kind}s")
    return render(
        request,
        "parties/party_delete.html",
        {"title": f"Delete {kind} {obj.name}", "party": obj, "kind": kind, "back_url": detail},
    )


# --- Senders ------------------------------------------------------------------------------------


@require_safe
@permission_required("parties.view_sender", raise_exception=True)
@vary_on_headers("HX-Request")
def senders(request: HttpRequest) -> HttpResponse:
    can_manage = request.user.has_perm(MANAGE_SENDER)
    return _list(
        request,
        title="Senders",
        page_of=selectors.sender_page,
        export_list="senders",
        rows_template="parties/_sender_rows.html",
        search_help="Name, email, FlashFX id or external id.",
        new_url="parties:sender-new" if can_manage else None,
        new_label="New sender",
    )


@GET_POST
@permission_required(MANAGE_SENDER, raise_exception=True)
def sender_new(request: HttpRequest) -> HttpResponse:
    form = SenderForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            sender = sender_services.sender_create(fields=form.cleaned_data, actor=request.user)
        except PartyError as exc:
            _refused(form, exc)
        else:
            messages.success(request, f"Sender {sender.name} created at FlashFX.")
            return redirect("parties:sender", flashfx_id=sender.flashfx_id)
    return render(
        request,
        "parties/party_edit.html",
        {
            "title": "New sender",
            "form": form,
            "back_url": reverse("parties:senders"),
            "kind": "sender",
            "submit": "Create sender",
        },
    )


@require_safe
@permission_required("parties.view_sender", raise_exception=True)
def sender(request: HttpRequest, flashfx_id: str) -> HttpResponse:
    obj = get_object_or_404(Sender.objects.flashfx_id(flashfx_id))
    return render(
        request,
        "parties/sender_detail.html",
        {
            "title": f"Sender {obj.name}",
            "sender": obj,
            "can_manage": request.user.has_perm(MANAGE_SENDER) and obj.deleted_at is None,
        },
    )


@GET_POST
@permission_required(MANAGE_SENDER, raise_exception=True)
def sender_edit(request: HttpRequest, flashfx_id: str) -> HttpResponse:
    obj = get_object_or_404(Sender.objects.flashfx_id(flashfx_id), deleted_at__isnull=True)
    form = SenderForm(request.POST or None, initial=SenderForm.initial_from(obj), editing=True)
    return _edit(
        request,
        obj,
        form,
        kind="sender",
        update=lambda: sender_services.sender_update(
            sender=obj, fields=form.cleaned_data, actor=request.user
        ),
    )


@GET_POST
@permission_required(MANAGE_SENDER, raise_exception=True)
def sender_delete(request: HttpRequest, flashfx_id: str) -> HttpResponse:
    obj = get_object_or_404(Sender.objects.flashfx_id(flashfx_id), deleted_at__isnull=True)
    return _delete(
        request,
        obj,
        kind="sender",
        delete=lambda: sender_services.sender_delete(sender=obj, actor=request.user),
    )


# --- Sub-clients --------------------------------------------------------------------------------


@require_safe
@permission_required("parties.view_subclient", raise_exception=True)
@vary_on_headers("HX-Request")
def sub_clients(request: HttpRequest) -> HttpResponse:
    can_create = request.user.has_perm(CREATE_SUB_CLIENT)
    return _list(
        request,
        title="Sub-clients",
        page_of=selectors.sub_client_page,
        rows_template="parties/_sub_client_rows.html",
        search_help="Name, BSB, account number, FlashFX id or external id.",
        new_url="parties:sub-client-new" if can_create else None,
        new_label="New sub-client",
    )


@GET_POST
@permission_required(CREATE_SUB_CLIENT, raise_exception=True)
def sub_client_new(request: HttpRequest) -> HttpResponse:
    form = SubClientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = sub_client_services.sub_client_create(
                fields=form.cleaned_data, actor=request.user
            )
        except PartyError as exc:
            _refused(form, exc)
        else:
            messages.success(
                request,
                f"Sub-client {created.full_name} created at FlashFX: BSB {created.bsb}, "
                f"account number {created.account_no}.",
            )
            return redirect(f"{reverse('parties:sub-clients')}?q={created.account_no}")
    return render(
        request,
        "parties/party_edit.html",
        {
            "title": "New sub-client",
            "form": form,
            "back_url": reverse("parties:sub-clients"),
            "kind": "sub-client",
            "submit": "Create sub-client",
            "note": "FlashFX gives the sub-client its own BSB and account number to share with "
            "them; it checks the details first (status INITIATED, then ACTIVE).",
        },
    )
