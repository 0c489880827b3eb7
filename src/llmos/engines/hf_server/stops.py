"""Stop strings in streamed text: what may be sent now, and where the text ends.

Used by ``app.py`` on every piece of generated text. Text that could be the
start of a stop string is held back until the next piece decides it.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopScanner:
    """Cuts streamed text at the first stop string; ``stopped`` once one is seen."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.stopped = False
        self._pending = ""

    def feed(self, piece: str) -> str:
        """The text that is safe to send after ``piece`` arrives."""
        if self.stopped:
            return ""
        text = self._pending + piece
        found = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        if found:
            self.stopped = True
            self._pending = ""
            return text[: min(found)]
        hold = self._held(text)
        self._pending = text[len(text) - hold :]
        return text[: len(text) - hold]

    def flush(self) -> str:
        """What was held back, once the text has ended without a stop string."""
        rest, self._pending = self._pending, ""
        return rest

    def _held(self, text: str) -> int:
        """Length of the longest end of ``text`` that begins some stop string."""
        longest = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:size]):
                    longest = size
                    break
        return longest
