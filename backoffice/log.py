"""Logging: a handler that writes to whatever sys.stderr is when a record is written, and the
request id that ties a request's records to those of the tasks it started.

logging.StreamHandler keeps the stream it was given at configuration; when that stream is
replaced and closed later (pytest's output capture does this), every record then fails with
"I/O operation on closed file". Looking the stream up on each record avoids that.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse


class StderrHandler(logging.StreamHandler):
    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ and setStream assign it
        pass


# --- The request id ---------------------------------------------------------------------------
# One id per web request (from a proxy's X-Request-ID when it is a sane token, else a new one),
# answered in X-Request-ID, put on every log record written while the request runs, and carried
# in the headers of every Celery task it publishes, so that the task's records carry it too
# (backoffice/celery.py). "-" outside any request or task.

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")
_request_id: ContextVar[str] = ContextVar("request_id", default="-")


def current_request_id() -> str:
    return _request_id.get()


@contextmanager
def request_id_bound(value: str) -> Iterator[str]:
    token = _request_id.set(value)
    try:
        yield value
    finally:
        _request_id.reset(token)


def request_id_from(header: str | None) -> str:
    """The proxy's id when it is a token of 8-64 safe characters, else a new random one."""
    if header and _SANE_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (as `request_id`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_id_bound(request_id_from(request.headers.get(REQUEST_ID_HEADER))) as rid:
            request.request_id = rid
            response = self.get_response(request)
        response[REQUEST_ID_HEADER] = rid
        return response
