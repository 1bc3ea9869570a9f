"""A seekable, read-only file over any `fetch(start, end)` byte-range function, fetched in blocks.

Lets PIL parse an image header from object storage with one or two small ranged GETs instead of
downloading the whole object. With `block_size=None` every read is one exact ranged read (Parquet's
reader asks for its footer and column chunks exactly; blocks would only fetch bytes it does not want).
"""

from __future__ import annotations

import io
from collections.abc import Callable


class RangedFile(io.RawIOBase):
    def __init__(self, fetch: Callable[[int, int], bytes], size: int, block_size: int | None = 64 * 1024):
        self._fetch = fetch  # fetch(start, end_exclusive) -> bytes
        self._size = size
        self._block_size = block_size
        self._blocks: dict[int, bytes] = {}
        self._pos = 0
        self.bytes_fetched = 0
        self.requests = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _block(self, index: int) -> bytes:
        if index not in self._blocks:
            start = index * self._block_size
            data = self._fetch(start, min(start + self._block_size, self._size))
            self.requests += 1
            self.bytes_fetched += len(data)
            self._blocks[index] = data
        return self._blocks[index]

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._size - self._pos)
        if self._block_size is None:
            data = self._fetch(self._pos, self._pos + wanted) if wanted > 0 else b""
            self.requests += bool(data)
            self.bytes_fetched += len(data)
            view[: len(data)] = data
            self._pos += len(data)
            return len(data)
        written = 0
        while written < wanted:
            index, offset = divmod(self._pos, self._block_size)
            chunk = self._block(index)[offset : offset + wanted - written]
            if not chunk:
                break
            view[written : written + len(chunk)] = chunk
            written += len(chunk)
            self._pos += len(chunk)
        return written

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._size - self._pos
        buffer = bytearray(max(0, min(size, self._size - self._pos)))
        return bytes(buffer[: self.readinto(buffer)])
