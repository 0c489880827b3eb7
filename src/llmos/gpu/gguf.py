"""Read the metadata of a GGUF file (llama.cpp's model format) without loading the model.

A GGUF file starts with ``GGUF``, a version (2 or 3), the tensor and
key-value counts, then the key-value pairs. :func:`read_metadata` walks the
pairs and keeps the scalars (``general.architecture``,
``llama.block_count``, …); arrays (the tokenizer's vocabulary) are skipped
and kept as their length. Only the header is read, a few hundred kilobytes
for a vocabulary of 50,000 tokens. The ``gguf`` package would do this too,
but it is not a dependency of LLMOS.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from llmos._lib.errors import Reason
from llmos.gpu.errors import GPUError

__all__ = ["GGUFError", "read_metadata"]

Scalar = int | float | bool | str

# value type → struct format of one item (little-endian), for the fixed-size types
_FIXED = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
_MAX_STRING = 1 << 24  # a key or value this long means the file is not what it claims
_MAX_ITEMS = 1 << 32


class GGUFError(GPUError):
    """The file is not GGUF, or its header is cut short."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Reason.INVALID)


class _Reader:
    def __init__(self, handle: BinaryIO, path: Path) -> None:
        self.handle = handle
        self.path = path

    def take(self, size: int) -> bytes:
        data = self.handle.read(size)
        if len(data) != size:
            raise GGUFError(f"{self.path}: the GGUF header ends early")
        return data

    def unpack(self, fmt: str) -> int | float | bool:
        value: int | float | bool = struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]
        return value

    def string(self) -> str:
        size = int(self.unpack("<Q"))
        if size > _MAX_STRING:
            raise GGUFError(f"{self.path}: a GGUF string of {size} bytes: the file is damaged")
        return self.take(size).decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        size = int(self.unpack("<Q"))
        if size > _MAX_STRING:
            raise GGUFError(f"{self.path}: a GGUF string of {size} bytes: the file is damaged")
        self.handle.seek(size, 1)

    def value(self, kind: int) -> Scalar | int:
        """A scalar value; an array is skipped and answered by its length."""
        if kind in _FIXED:
            return self.unpack(_FIXED[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item = int(self.unpack("<I"))
            count = int(self.unpack("<Q"))
            if count > _MAX_ITEMS:
                raise GGUFError(f"{self.path}: a GGUF array of {count} items: the file is damaged")
            if item in _FIXED:
                self.handle.seek(count * struct.calcsize(_FIXED[item]), 1)
            elif item == _STRING:
                for _ in range(count):
                    self.skip_string()
            else:
                raise GGUFError(f"{self.path}: GGUF arrays of type {item} are not supported")
            return count
        raise GGUFError(f"{self.path}: unknown GGUF value type {kind}")


def read_metadata(path: Path) -> dict[str, Scalar]:
    """The key-value metadata of the GGUF file at ``path`` (arrays as their length)."""
    with path.open("rb") as handle:
        reader = _Reader(handle, path)
        if reader.take(4) != b"GGUF":
            raise GGUFError(f"{path} is not a GGUF file (it does not start with GGUF)")
        version = int(reader.unpack("<I"))
        if version not in (2, 3):
            raise GGUFError(f"{path}: GGUF version {version} is not supported (2 or 3 are)")
        reader.unpack("<Q")  # tensor count
        pairs = int(reader.unpack("<Q"))
        if pairs > 1 << 20:
            raise GGUFError(f"{path}: {pairs} GGUF metadata keys: the file is damaged")
        metadata: dict[str, Scalar] = {}
        for _ in range(pairs):
            key = reader.string()
            metadata[key] = reader.value(int(reader.unpack("<I")))
        return metadata
