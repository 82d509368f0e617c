"""`manage.py runserver` (what `make run` serves with), answering 404 for a static path that
leaves the static folders.

Django's development static handler turns only Http404 into an answer: a path such as
/static/../manage.py makes its finders raise SuspiciousFileOperation, which it lets through as
a 500 with a traceback in the log. Here that is the 404 it is: there is no such static file.
(backoffice sits before django.contrib.staticfiles in INSTALLED_APPS so this command wins.)
"""

from __future__ import annotations

from typing import Any

from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.contrib.staticfiles.management.commands import runserver
from django.core.exceptions import SuspiciousFileOperation
from django.core.handlers.exception import response_for_exception
from django.http import Http404, HttpRequest, HttpResponse


class ContainedStaticFilesHandler(StaticFilesHandler):
    def get_response(self, request: HttpRequest) -> HttpResponse:
        try:
            return super().get_response(request)
        except SuspiciousFileOperation:
            return response_for_exception(request, Http404("No such static file."))


class Command(runserver.Command):
    def get_handler(self, *args: Any, **options: Any) -> Any:
        handler = super().get_handler(*args, **options)
        if isinstance(handler, StaticFilesHandler):
            return ContainedStaticFilesHandler(handler.application)
        return handler
