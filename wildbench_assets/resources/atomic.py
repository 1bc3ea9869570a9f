"""The one way files are published: written under a temp name in the target's folder, fsynced, then
renamed, so nothing is ever visible half-written under its final name.

Temp names carry the writer's pid (`.wb-tmp-<pid>-…`): the next writer in a folder deletes temps whose
process is gone (a run killed mid-write leaves nothing behind for long), and listings skip them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_PREFIX = ".wb-tmp-"


def is_temp(name: str) -> bool:
    return name.startswith(TEMP_PREFIX)


def process_alive(pid: int) -> bool:
    """Whether a process of this host still runs (a temp's writer, a CLI run's owner)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_temps(folder: Path) -> int:
    """Delete temps in `folder` left by writers that no longer run; returns how many."""
    removed = 0
    if not folder.is_dir():
        return 0
    for entry in folder.iterdir():
        if not is_temp(entry.name):
            continue
        pid = entry.name[len(TEMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            removed += 1
    return removed


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temp path to write; on success it is fsynced and renamed to `target` (mode 0644)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", dir=target.parent, suffix=target.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class StagedDir:
    """A temp folder beside `target`; `publish()` makes it `target`, whole, in one rename (after
    `before_publish`, e.g. the upload that makes it visible in object storage, has succeeded)."""

    def __init__(self, target: Path, before_publish: Callable[[Path], None] | None = None):
        self.target = target
        self.before_publish = before_publish
        target.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale_temps(target.parent)
        self.path = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", dir=target.parent))

    def publish(self) -> None:
        if self.before_publish is not None:
            self.before_publish(self.path)
        os.chmod(self.path, 0o755)  # mkdtemp creates 0700
        old = None
        if self.target.exists():
            old = self.target.with_name(f"{TEMP_PREFIX}{os.getpid()}-old-{self.target.name}")
            os.replace(self.target, old)
        os.replace(self.path, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_dir(target: Path, before_publish: Callable[[Path], None] | None = None) -> Iterator[StagedDir]:
    """A folder to fill that becomes `target` only if `publish()` is called; removed otherwise (a checked
    artefact is published only after its checks passed)."""
    staged = StagedDir(target, before_publish)
    try:
        yield staged
    finally:
        shutil.rmtree(staged.path, ignore_errors=True)  # nothing left once published


@contextmanager
def atomic_dir(target: Path, before_publish: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a temp folder to fill; on success it replaces `target` whole (the old one moved aside first)."""
    with staged_dir(target, before_publish) as staged:
        yield staged.path
        staged.publish()
