"""The sandbox's HTTP server: Django's threaded development server, plus one ability it lacks.

"commit then drop" must close the connection after the mutation committed and before any byte
of the answer is written; the handler below does that when the view marks the request.
"""

from __future__ import annotations

import contextlib
import socket

from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ServerHandler, ThreadedWSGIServer, WSGIRequestHandler

from .views import DROP_CONNECTION


class DroppingServerHandler(ServerHandler):
    def finish_response(self) -> None:
        if not self.environ.get(DROP_CONNECTION):
            super().finish_response()
            return
        if hasattr(self.result, "close"):
            self.result.close()
        self.request_handler.close_connection = True
        with contextlib.suppress(OSError):  # the client may be gone already; no answer either way
            self.request_handler.connection.shutdown(socket.SHUT_RDWR)


class SandboxRequestHandler(WSGIRequestHandler):
    def handle_one_request(self) -> None:
        # As Django's own handle_one_request, with DroppingServerHandler in place of ServerHandler.
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = DroppingServerHandler(
            self.rfile, self.wfile, self.get_stderr(), self.get_environ()
        )
        handler.request_handler = self
        handler.run(self.server.get_app())


def make_server(host: str, port: int) -> ThreadedWSGIServer:
    server = ThreadedWSGIServer((host, port), SandboxRequestHandler, ipv6=":" in host)
    server.daemon_threads = True
    server.set_app(WSGIHandler())
    return server
