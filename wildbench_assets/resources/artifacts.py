"""Binary artefacts (ZIPs, weights, label files): written to a temp name, then renamed, with sha256."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field

from wildbench_assets.resources.atomic import atomic_dir, atomic_file


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
        with atomic_file(self.path(relative)) as tmp:
            yield tmp

    @contextmanager
    def writing_dir(self, relative: str) -> Iterator[Path]:
        """Yield a temp folder to fill; on success it replaces `relative` whole."""
        with atomic_dir(self.path(relative)) as tmp:
            yield tmp

    def publish_zip(self, relative: str, members, open_source) -> tuple[StoredArtifact, list[str]]:
        """(stored ZIP, entry names): streamed to a temp name, every CRC verified, then renamed."""
        from wildbench_assets.lib.zips import verify_zip, write_zip

        with self.writing(relative) as tmp:
            names = write_zip(str(tmp), members, open_source)
            problem = verify_zip(str(tmp), names)
            if problem:
                raise dg.Failure(f"{relative} failed verification before publishing: {problem}")
        return self.describe(relative), names

    def describe(self, relative: str) -> StoredArtifact:
        path = self.path(relative)
        return StoredArtifact(path, sha256_file(path), path.stat().st_size)
