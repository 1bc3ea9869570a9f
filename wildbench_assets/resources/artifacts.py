"""Binary artefacts (ZIPs, weights, label files): written to a temp name, then renamed, with sha256."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field


@dataclass(frozen=True)
class StoredArtifact:
    path: Path
    sha256: str
    bytes: int

    def metadata(self) -> dict:
        return {"path": dg.MetadataValue.path(str(self.path)), "sha256": self.sha256, "bytes": self.bytes}


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class ArtifactStore(dg.ConfigurableResource):
    """Files under `<base_dir>/artifacts/`; nothing is visible under its final name until complete."""

    base_dir: str = Field(description="The data directory (WILDBENCH_DATA)")

    def path(self, relative: str) -> Path:
        return Path(self.base_dir, "artifacts", relative)

    @contextmanager
    def writing(self, relative: str) -> Iterator[Path]:
        """Yield a temp path to write; on success it is fsynced and renamed to `relative`."""
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".wb-tmp-", dir=target.parent, suffix=target.suffix)
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

    @contextmanager
    def writing_dir(self, relative: str) -> Iterator[Path]:
        """Yield a temp folder to fill; on success it replaces `relative` whole (old one moved aside first)."""
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".wb-tmp-", dir=target.parent))
        try:
            yield tmp
            os.chmod(tmp, 0o755)
            old = None
            if target.exists():
                old = target.with_name(f".wb-old-{target.name}-{os.getpid()}")
                os.replace(target, old)
            os.replace(tmp, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def describe(self, relative: str) -> StoredArtifact:
        path = self.path(relative)
        return StoredArtifact(path, sha256_file(path), path.stat().st_size)
