"""Binary artefacts (ZIPs, weights, label files, releases) under `<base_dir>/artifacts/`: a local folder, or
an S3 prefix in production. Nothing is visible under its final name until complete.

With S3 the bucket is the truth. Steps still need files (trainers read dataset folders, ZIP writers seek),
so `path()` hands out a local copy kept in a cache folder, refreshed from the bucket when an object's etag
changed, and every write is uploaded before it is published locally. Any worker on any machine sees the
same artefacts; a local copy is never the only one.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import dagster as dg
from dagster_aws.s3.resources import ResourceWithS3Configuration
from pydantic import Field

from wildbench_assets.lib.ranged import RangedFile
from wildbench_assets.resources.archive import Archive, ArchiveObject, open_store
from wildbench_assets.resources.atomic import StagedDir, atomic_dir, atomic_file, is_temp, staged_dir


@dataclass(frozen=True)
class StoredArtifact:
    path: Path  # the local file (with S3: the cached copy)
    sha256: str
    bytes: int
    uri: str = ""  # where it is stored: the path, or s3://bucket/key

    def metadata(self) -> dict:
        return {"path": dg.MetadataValue.path(self.uri or str(self.path)), "sha256": self.sha256,
                "bytes": self.bytes}


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download_link(artifacts: ArtifactStore, relative: str) -> dict:
    """`url` and `url_expires_at` for a result file, when the store can hand out presigned URLs."""
    from wildbench_assets.settings import download_expiry_s

    expires = download_expiry_s()
    url = artifacts.download_url(relative, expires)
    if url is None:
        return {}
    return {"url": url, "url_expires_at": (datetime.now(UTC) + timedelta(seconds=expires)).isoformat()}


class ArtifactStore(ResourceWithS3Configuration):
    """Files under `<base_dir>/artifacts/`; `base_dir` is a folder or `s3://bucket/prefix` (dagster-aws's S3
    settings; the local copies then live under `cache_dir`)."""

    base_dir: str = Field(description="The data directory (WILDBENCH_DATA): a folder or s3://bucket/prefix")
    cache_dir: str | None = Field(default=None, description="Local copies of S3 artefacts (WILDBENCH_CACHE)")
    public_endpoint_url: str | None = Field(
        default=None, description="The S3 address researchers reach, if not endpoint_url: download links are "
                                  "signed for it (WILDBENCH_S3_PUBLIC_ENDPOINT_URL)")

    @property
    def remote(self) -> bool:
        return self.base_dir.startswith("s3://")

    def uri(self, relative: str) -> str:
        return f"{self.base_dir.rstrip('/')}/artifacts/{relative}"

    def _store(self) -> Archive:
        return open_store(f"{self.base_dir.rstrip('/')}/artifacts", self)

    def _root(self) -> Path:
        if not self.remote:
            return Path(self.base_dir, "artifacts")
        from wildbench_assets.settings import cache_dir

        return Path(self.cache_dir or cache_dir(self.base_dir), "artifacts")

    def _etag_file(self, relative: str) -> Path:
        return self._root().parent / "etags" / relative

    def path(self, relative: str) -> Path:
        """The local file or folder `relative` (with S3: a copy synced from the bucket first; what the bucket
        does not hold is absent here too)."""
        local = self._root() / relative
        if self.remote:
            self._sync(relative.strip("/"), local)
        return local

    def _sync(self, relative: str, local: Path) -> None:
        store = self._store()
        remote = {o.key: o for o in store.list(relative) if o.key == relative or o.key.startswith(relative + "/")}
        for key, obj in remote.items():
            self._fetch(store, key, obj)
        if local.is_file() and relative not in remote:
            local.unlink()
        elif local.is_dir():  # drop copies of objects deleted from the bucket; keep scratch (hidden) folders
            for path in sorted(local.rglob("*"), reverse=True):
                rel = path.relative_to(self._root()).as_posix()
                if any(part.startswith(".") for part in path.relative_to(local).parts):
                    continue
                if path.is_file() and rel not in remote:
                    path.unlink()
                elif path.is_dir() and not any(path.iterdir()):
                    path.rmdir()

    def _fetch(self, store: Archive, key: str, obj: ArchiveObject) -> None:
        local, etag_file = self._root() / key, self._etag_file(key)
        if local.is_file() and etag_file.is_file() and etag_file.read_text() == obj.etag:
            return
        store.download_file(key, local)
        self._remember(key, obj.etag)

    def _remember(self, key: str, etag: str) -> None:
        with atomic_file(self._etag_file(key)) as tmp:
            tmp.write_text(etag)

    def _upload(self, folder_or_file: Path, relative: str, seal: str | None = None) -> None:
        """Upload a file, or every file of a folder (replacing what the bucket held under that folder). A
        folder's objects appear one by one; its `seal` (the file whose presence says the folder is whole,
        e.g. a release's manifest) goes last, so a reader never takes a half-uploaded folder for complete."""
        store = self._store()
        if folder_or_file.is_file():
            store.upload_file(folder_or_file, relative)
            uploaded = {relative}
        else:
            uploaded = set()
            files = [p for p in folder_or_file.rglob("*") if p.is_file() and not is_temp(p.name)]
            for path in sorted(files, key=lambda p: (p.relative_to(folder_or_file).as_posix() == seal, p)):
                key = f"{relative}/{path.relative_to(folder_or_file).as_posix()}"
                store.upload_file(path, key)
                uploaded.add(key)
            for obj in store.list(relative + "/"):
                if obj.key not in uploaded:
                    store.delete(obj.key)
        for obj in store.list(relative):
            if obj.key in uploaded:
                self._remember(obj.key, obj.etag)

    @contextmanager
    def writing(self, relative: str) -> Iterator[Path]:
        """Yield a temp path to write; on success it is uploaded (S3), fsynced and renamed to `relative`."""
        with atomic_file(self._root() / relative) as tmp:
            yield tmp
            if self.remote:
                self._upload(tmp, relative)

    @contextmanager
    def writing_dir(self, relative: str) -> Iterator[Path]:
        """Yield a temp folder to fill; on success it replaces `relative` whole."""
        with atomic_dir(self._root() / relative, self._uploader(relative)) as tmp:
            yield tmp

    @contextmanager
    def staged_dir(self, relative: str, seal: str | None = None) -> Iterator[StagedDir]:
        """A folder to fill that becomes `relative` only when `publish()` is called (after its checks); in S3,
        `seal` is uploaded last."""
        with staged_dir(self._root() / relative, self._uploader(relative, seal)) as staged:
            yield staged

    def _uploader(self, relative: str, seal: str | None = None):
        return (lambda folder: self._upload(folder, relative, seal)) if self.remote else None

    def publish_zip(self, relative: str, members, open_source) -> tuple[StoredArtifact, list[str]]:
        """(stored ZIP, entry names): streamed to a temp name, every CRC verified, then published."""
        from wildbench_assets.lib.zips import verify_zip, write_zip

        with self.writing(relative) as tmp:
            names = write_zip(str(tmp), members, open_source)
            problem = verify_zip(str(tmp), names)
            if problem:
                raise dg.Failure(f"{relative} failed verification before publishing: {problem}")
        return self.describe(relative), names

    def describe(self, relative: str) -> StoredArtifact:
        path = self._root() / relative  # just written or synced: the local copy is current
        return StoredArtifact(path, sha256_file(path), path.stat().st_size, self.uri(relative))

    def exists(self, relative: str) -> bool:
        """Whether the store holds the file `relative` (with S3: asked of the bucket, nothing is fetched)."""
        if not self.remote:
            return (self._root() / relative).is_file()
        return self._store().describe(relative) is not None

    def open(self, relative: str, block_size: int = 8 << 20) -> BinaryIO:
        """A seekable read-only stream of the file `relative` (a ZIP opens on it); with S3, ranged reads of the
        object, never a copy in the cache. FileNotFoundError when the store holds no such file."""
        if not self.remote:
            return open(self._root() / relative, "rb")
        store = self._store()
        found = store.describe(relative)
        if found is None:
            raise FileNotFoundError(self.uri(relative))
        return io.BufferedReader(RangedFile(lambda start, end: store.read_range(relative, start, end), found.size,
                                            block_size), buffer_size=block_size)

    def list(self, prefix: str) -> Iterator[ArchiveObject]:
        """What the store holds under `prefix` (keys relative to `artifacts/`)."""
        return self._store().list(prefix)

    def delete(self, relative: str) -> None:
        """Remove a file or a whole folder, from the store and from the local copy."""
        store = self._store()
        for obj in list(store.list(relative)):
            if obj.key == relative or obj.key.startswith(relative.rstrip("/") + "/"):
                store.delete(obj.key)
        local = self._root() / relative
        shutil.rmtree(local, ignore_errors=True) if local.is_dir() else local.unlink(missing_ok=True)

    def download_url(self, relative: str, expires_s: int) -> str | None:
        """A presigned URL anyone can download `relative` from until it expires (S3); None for a folder store."""
        if not self.remote:
            return None
        if not self.public_endpoint_url:
            return self._store().presign(relative, expires_s)
        public = self.model_copy(update={"endpoint_url": self.public_endpoint_url})
        return open_store(f"{self.base_dir.rstrip('/')}/artifacts", public).presign(relative, expires_s)

    def is_download_url(self, url: object, relative: str) -> bool:
        """Whether `url` is an http(s) link to `relative` on the store's S3 endpoint (the public one when
        set), the only kind of link `download_url` hands out: anything else in a result file
        (`file:///etc/shadow`, another host, another object) is never followed."""
        from urllib.parse import unquote, urlsplit

        if not (self.remote and isinstance(url, str)):
            return False
        given = urlsplit(url)
        endpoint = self.public_endpoint_url or self.endpoint_url
        host_ok = (given.netloc == urlsplit(endpoint).netloc if endpoint
                   else given.hostname is not None and given.hostname.endswith(".amazonaws.com"))
        return (given.scheme in ("http", "https") and host_ok
                and unquote(given.path).endswith(f"/artifacts/{relative}"))
