"""Keep an engine's readiness probe (a GET every 2 s) out of its access log, and so out of
the replica's log that ``llmos logs`` and the dashboard show."""

from __future__ import annotations

import logging


class NotTheProbe(logging.Filter):
    """Drops uvicorn access-log records for ``path``; its args are (client, method, path, ...)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(args, tuple) and len(args) >= 3 and args[2] == self.path)


def quiet(path: str) -> None:
    logging.getLogger("uvicorn.access").addFilter(NotTheProbe(path))
