"""Logging to whatever sys.stderr is when a record is written.

logging.StreamHandler keeps the stream it was given at configuration; when that stream is
replaced and closed later (pytest's output capture does this), every record then fails with
"I/O operation on closed file". Looking the stream up on each record avoids that.
"""

from __future__ import annotations

import logging
import sys


class StderrHandler(logging.StreamHandler):
    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ and setStream assign it
        pass
