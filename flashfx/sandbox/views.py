"""HTTP: the GraphQL endpoint at "/", the JSON control endpoints under /_sandbox/, the console."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from graphql import FieldNode, GraphQLError, OperationDefinitionNode, execute, parse, validate
from graphql.error import GraphQLSyntaxError

from . import (
    api,
    auth,
    clock,
    conf,
    cop,
    faults,
    machines,
    parties,
    seed,
    transfers,
    validation,
    webhooks,
    wire,
)
from .errors import BadUserInput, BusinessFailure, InvalidTransition, Unauthenticated
from .models import Balance, CopCheck, Deposit, Payment, SubClient, WebhookDelivery, Withdrawal

log = logging.getLogger(__name__)

DROP_CONNECTION = "sandbox.drop_connection"  # read by server.DroppingServerHandler


def _json(payload: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(wire.dumps(payload), status=status, content_type="application/json")


def _errors(*errors: dict[str, Any], status: int = 200) -> HttpResponse:
    return _json({"data": None, "errors": list(errors)}, status=status)


def _error(message: str, code: str) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code}}


def _root_fields(document, operation_name: str | None) -> set[str]:
    """The top-level field names of the operation to run.

    A fragment at the top level, or an operation that cannot be chosen, counts as "<other>", so
    that only a document made of public fields alone goes without a token.
    """
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [
        op
        for op in operations
        if operation_name is None or (op.name and op.name.value == operation_name)
    ]
    if len(chosen) != 1:
        return {"<other>"}
    return {
        s.name.value if isinstance(s, FieldNode) else "<other>"
        for s in chosen[0].selection_set.selections
    }


def graphql_endpoint(request: HttpRequest) -> HttpResponse:
    """POST {"query", "variables", "operationName"} at the root path, like FlashFX (docs/flashfx.md §1.1).

    Decisions: a body that is not a GraphQL request, a syntax error, a schema validation error or
    a variable of the wrong type is HTTP 400 with extensions.code (BAD_REQUEST,
    GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, BAD_USER_INPUT); everything else is 200.
    """
    if request.method != "POST":
        return _errors(
            _error("POST a GraphQL request as JSON to this URL", "METHOD_NOT_ALLOWED"), status=405
        )
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return _errors(_error("The body must be JSON", "BAD_REQUEST"), status=400)
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return _errors(
            _error('The body must be an object with a "query" string', "BAD_REQUEST"), status=400
        )
    variables = body.get("variables") or {}
    operation_name = body.get("operationName")
    if not isinstance(variables, dict) or not (
        operation_name is None or isinstance(operation_name, str)
    ):
        return _errors(
            _error('"variables" must be an object and "operationName" a string', "BAD_REQUEST"),
            status=400,
        )
    try:
        document = parse(body["query"])
    except GraphQLSyntaxError as exc:
        return _errors(_error(exc.message, "GRAPHQL_PARSE_FAILED"), status=400)
    root_fields = _root_fields(document, operation_name)

    fault, fault_settings = faults.pick(root_fields)
    if fault and (response := faults.early_response(fault, fault_settings)):
        return response
    if fault == "slow":
        time.sleep(fault_settings["slow_seconds"])

    if validation_errors := validate(api.schema, document):
        return _errors(
            *[_error(e.message, "GRAPHQL_VALIDATION_FAILED") for e in validation_errors], status=400
        )
    context: dict[str, Any] = {"request": request, "session": None}
    if root_fields - api.PUBLIC_FIELDS:
        try:
            context["session"] = auth.authenticate(request.headers.get("authorization"))
        except Unauthenticated as exc:
            return _errors(exc.formatted)
    result = execute(
        api.schema,
        document,
        variable_values=variables,
        operation_name=operation_name,
        context_value=context,
    )
    if context.get("login_throttled"):
        interval = conf.get_config()["login_interval_seconds"]
        return faults.rate_limited(
            max(1, math.ceil(interval)), "Too many logins: at most one per second"
        )
    status = 200
    errors = []
    for error in result.errors or []:
        original = error.original_error
        if original is not None and not isinstance(original, GraphQLError):
            log.error("resolver failed at %s", error.path, exc_info=original)
            errors.append({**error.formatted, "extensions": {"code": "INTERNAL_SERVER_ERROR"}})
        elif error.path is None and result.data is None:  # variables did not fit their types
            errors.append({**error.formatted, "extensions": {"code": "BAD_USER_INPUT"}})
            status = 400
        else:
            errors.append(error.formatted)
    payload: dict[str, Any] = {"data": result.data}
    if errors:
        payload["errors"] = errors
    response = HttpResponse(json.dumps(payload), status=status, content_type="application/json")
    if fault == "commit_then_drop":
        request.META[DROP_CONNECTION] = True
    return response


# --- Control endpoints (ours, not FlashFX's) --------------------------------------------------


def control(view: Callable[..., Any]) -> Callable[..., HttpResponse]:
    """JSON in and out; bad input is 400, a refused action 409, an unknown object 404."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        data: Any = {}
        if request.method == "POST" and request.body:
            try:
                data = json.loads(request.body)
            except (ValueError, UnicodeDecodeError):
                return _json({"error": "the body must be JSON"}, status=400)
            if not isinstance(data, dict):
                return _json({"error": "the body must be a JSON object"}, status=400)
        try:
            return view(request, data, *args, **kwargs)
        except BadUserInput as exc:
            return _json({"error": exc.message, "field": exc.field}, status=400)
        except conf.ConfigError as exc:
            return _json({"error": str(exc)}, status=400)
        except (BusinessFailure, InvalidTransition) as exc:
            code = getattr(exc, "code", "INVALID_TRANSITION")
            return _json({"error": str(exc), "code": code}, status=409)

    return wrapper


@require_GET
@control
def control_health(request: HttpRequest, data: dict) -> HttpResponse:
    return _json({"status": "ok"})


@require_POST
@control
def control_reset(request: HttpRequest, data: dict) -> HttpResponse:
    """Wipe everything (config and faults back to their defaults); re-seed if asked."""
    seed.reset(with_demo_data=bool(data.get("seed")))
    return _json({"status": "reset", "seeded": bool(data.get("seed"))})


@require_http_methods(["GET", "POST"])
@control
def control_config(request: HttpRequest, data: dict) -> HttpResponse:
    if request.method == "POST":
        conf.update_config(data)
        auth.ensure_api_user()
    config = conf.get_config()
    return _json({k: v for k, v in config.items() if k != "api_password"})


@require_http_methods(["GET", "POST"])
@control
def control_faults(request: HttpRequest, data: dict) -> HttpResponse:
    return _json(conf.set_faults(data) if request.method == "POST" else conf.get_faults())


@require_POST
@control
def control_deposit_create(request: HttpRequest, data: dict) -> HttpResponse:
    return _json(transfers.deposit_to_graphql(transfers.deposit_receive(data)), status=201)


@require_POST
@control
def control_deposit_import(request: HttpRequest, data: dict) -> HttpResponse:
    return _json(transfers.deposits_import(data), status=201)


ADVANCE = {
    "deposits": (Deposit, transfers.deposit_to_graphql),
    "withdrawals": (Withdrawal, transfers.withdrawal_to_graphql),
    "payments": (Payment, transfers.payment_to_graphql),
    "subclients": (SubClient, parties.sub_client_to_graphql),
}
# The details a forced move may carry: (kind, target status) -> {JSON name: keyword}.
ADVANCE_DETAILS = {
    ("withdrawals", "CANCELLED"): {"rejectCode": "reject_code"},
    ("withdrawals", "REFUNDED"): {"refundReason": "refund_reason"},
    ("deposits", "REFUNDING"): {"refundAmount": "refund_amount", "refundReason": "refund_reason"},
}


@require_POST
@control
def control_advance(request: HttpRequest, data: dict, kind: str, entity_id: str) -> HttpResponse:
    """Force one documented transition: {"to": "<STATUS>"} plus the details it may take."""
    if kind not in ADVANCE:
        return _json(
            {"error": f"no such kind {kind!r}; use one of {', '.join(ADVANCE)}"}, status=404
        )
    model, to_graphql = ADVANCE[kind]
    if not isinstance(data.get("to"), str):
        raise BadUserInput("to", "is required: the status to move to")
    options = ADVANCE_DETAILS.get((kind, data["to"]), {})
    unknown = sorted(set(data) - {"to", *options})
    if unknown:
        allowed = ", ".join(options) or "nothing but 'to'"
        raise BadUserInput(
            unknown[0], f"is not an option when moving {kind} to {data['to']} (allowed: {allowed})"
        )
    details = {options[k]: v for k, v in data.items() if k in options}
    if "reject_code" in details and details["reject_code"] not in machines.REJECT_MESSAGES:
        raise BadUserInput("rejectCode", "is not a documented reject code")
    if "refund_amount" in details:
        details["refund_amount"] = validation.amount("refundAmount", details["refund_amount"])
    with transaction.atomic():
        entity = model.objects.filter(pk=entity_id).first()
        if entity is None:
            return _json({"error": f"no {kind[:-1]} {entity_id}"}, status=404)
        machines.transition(entity, data["to"], forced=True, **details)
    return _json(to_graphql(entity))


@require_POST
@control
def control_webhook_test(request: HttpRequest, data: dict) -> HttpResponse:
    deliveries = webhooks.emit_test_event()
    if not deliveries:
        return _json({"error": "no webhook URL is configured"}, status=409)
    return _json(webhooks.serialize_delivery(deliveries[0]), status=201)


@require_GET
@control
def control_webhook_list(request: HttpRequest, data: dict) -> HttpResponse:
    deliveries = WebhookDelivery.objects.prefetch_related("attempt_log")
    if event := request.GET.get("event"):
        deliveries = deliveries.filter(event=event)
    if entity_id := request.GET.get("entityId"):
        deliveries = deliveries.filter(entity_id=entity_id)
    try:
        limit = min(int(request.GET.get("limit", 100)), 1000)
    except ValueError:
        return _json({"error": "limit must be a whole number"}, status=400)
    return _json([webhooks.serialize_delivery(d) for d in deliveries[:limit]])


@require_POST
@control
def control_tick(request: HttpRequest, data: dict) -> HttpResponse:
    return _json(clock.tick())


@require_GET
@control
def control_cop_checks(request: HttpRequest, data: dict) -> HttpResponse:
    """Every confirmationOfPayee request with its answer, newest first (FlashConnect's history)."""
    return _json([cop.check_to_json(c) for c in CopCheck.objects.all()])


# --- Console (HTML, for people) ----------------------------------------------------------------


@require_GET
def console(request: HttpRequest) -> HttpResponse:
    context = {
        "balances": Balance.objects.order_by("currency"),
        "deposits": Deposit.objects.select_related("sub_client")[:25],
        "withdrawals": Withdrawal.objects.all()[:25],
        "payments": Payment.objects.all()[:25],
        "deliveries": WebhookDelivery.objects.prefetch_related("attempt_log")[:25],
        "faults": conf.get_faults(),
        "fault_modes": conf.FAULT_MODES,
        "config": conf.get_config(),
        "message": request.GET.get("message", ""),
        "error": request.GET.get("error", ""),
        "withdrawal_moves": _moves(machines.WITHDRAWAL_EDGES),
        "deposit_moves": _moves(machines.DEPOSIT_EDGES),
        "payment_moves": _moves(machines.PAYMENT_EDGES),
    }
    return render(request, "sandbox/console.html", context)


def _moves(edges: set[tuple[str, str]]) -> dict[str, list[str]]:
    moves: dict[str, list[str]] = {}
    for source, target in sorted(edges):
        moves.setdefault(source, []).append(target)
    return moves


def _back(**query: str) -> HttpResponseRedirect:
    from urllib.parse import urlencode

    return HttpResponseRedirect(f"{reverse('console')}?{urlencode(query)}")


@require_POST
def console_action(request: HttpRequest, action: str) -> HttpResponse:
    """The console's buttons: the same services as the JSON endpoints, then back to the page."""
    form = request.POST
    try:
        if action == "deposit":
            deposit = transfers.deposit_receive(
                {
                    "amount": form.get("amount"),
                    "externalReference": form.get("externalReference", ""),
                    "sender": {
                        "accountName": form.get("accountName"),
                        "bsb": form.get("bsb") or None,
                        "accountNo": form.get("accountNo") or None,
                    },
                    "review": form.get("review") == "on",
                }
            )
            return _back(message=f"Deposit {deposit.id} received")
        if action == "advance":
            kind, model = {
                "deposit": ("deposit", Deposit),
                "withdrawal": ("withdrawal", Withdrawal),
                "payment": ("payment", Payment),
            }[form["kind"]]
            with transaction.atomic():
                entity = model.objects.get(pk=form["id"])
                machines.transition(entity, form["to"], forced=True)
            return _back(message=f"{kind} {entity.id} is now {form['to']}")
        if action == "test-webhook":
            return _back(
                message="Test event queued"
                if webhooks.emit_test_event()
                else "No webhook URL configured"
            )
        if action == "faults":
            conf.set_faults({mode: float(form.get(mode) or 0) for mode in conf.FAULT_MODES})
            return _back(message="Fault mix saved")
    except (
        BadUserInput,
        BusinessFailure,
        InvalidTransition,
        conf.ConfigError,
        KeyError,
        ValueError,
        Deposit.DoesNotExist,
        Withdrawal.DoesNotExist,
        Payment.DoesNotExist,
    ) as exc:
        return _back(error=str(exc))
    return HttpResponse(status=404)
