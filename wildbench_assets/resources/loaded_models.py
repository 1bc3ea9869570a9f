"""Models loaded once per process: the detector, the trained species models and their weights' sha256,
kept by weights file (path, size, mtime, inode) and the settings the load depends on.

The portal's inference requests and the prediction steps of one worker process reuse one loaded model
instead of reading and building it per request, per partition, per chunk. A retrained model is a new
file (atomic rename: a new inode and mtime), so it is loaded afresh and the old copy is dropped.
Thread-safe: two threads asking for the same model at once load it once.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class LoadedModels:
    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[tuple, object] = {}
        self._loading: dict[tuple, threading.Lock] = {}
        self.loads: Counter[str] = Counter()  # loads done per kind (tests and benchmarks read it)

    def get(self, kind: str, weights: Path, load: Callable[[], T], *settings: Hashable) -> T:
        """The object `load()` makes from `weights`, loaded once per (kind, weights file version, settings)."""
        path = Path(weights).resolve()
        stat = path.stat()
        file = (kind, str(path))
        key = (*file, stat.st_size, stat.st_mtime_ns, stat.st_ino, *settings)
        with self._lock:
            if key in self._entries:
                return self._entries[key]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                if key in self._entries:
                    return self._entries[key]
            value = load()
            with self._lock:
                for stale in [k for k in self._entries if k[:2] == file and k[2:5] != key[2:5]]:
                    del self._entries[stale]  # an older version of the same file
                self._entries[key] = value
                self._loading.pop(key, None)
                self.loads[kind] += 1
            return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


LOADED = LoadedModels()  # the process's one cache


def weights_sha256(weights: Path) -> str:
    """The weights file's sha256, hashed once per file version in this process."""
    return LOADED.get("sha256", weights, lambda: hashlib.sha256(Path(weights).read_bytes()).hexdigest())
