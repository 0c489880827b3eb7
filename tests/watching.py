"""Read a watch stream on a background thread, so a test can wait for events with a timeout."""

from __future__ import annotations

import queue
import threading
from typing import Any

import httpx
import orjson


class WatchReader:
    def __init__(self, client: httpx.Client, path: str, **params: str) -> None:
        self.events: queue.Queue[dict[str, Any] | Exception | None] = queue.Queue()
        self.status_code: int | None = None
        self._started = threading.Event()
        self._client = client
        self._path = path
        self._params = {"watch": "true", **params}
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise TimeoutError("the watch did not start")

    def _run(self) -> None:
        try:
            with self._client.stream("GET", self._path, params=self._params) as response:
                self._response = response
                self.status_code = response.status_code
                self._started.set()
                if response.status_code != 200:
                    response.read()
                    self.events.put(None)
                    return
                for line in response.iter_lines():
                    if line.strip():
                        self.events.put(orjson.loads(line))
        except Exception as exc:
            self.events.put(exc)
        finally:
            self._started.set()
            self.events.put(None)

    def next(self, timeout: float = 10.0) -> dict[str, Any]:
        item = self.events.get(timeout=timeout)
        if item is None:
            raise EOFError("the watch stream ended")
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
