"""The image archive: one URI (`/path` or `s3://bucket/prefix`), two real backends behind one interface."""

from __future__ import annotations

import errno
import os
import shutil
import stat as stat_module
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from dagster_aws.s3.resources import ResourceWithS3Configuration
from pydantic import Field

from wildbench_assets.resources.atomic import atomic_file, is_temp

REGULAR, SYMLINK, SPECIAL = "file", "symbolic link", "special file"


class NotARegularFile(OSError):
    """An archive key that names a link, a device, a pipe, or a path outside the archive: never read."""


@dataclass(frozen=True)
class ArchiveObject:
    key: str  # relative to the archive root, '/'-separated
    size: int
    etag: str
    last_modified: datetime  # UTC
    kind: str = REGULAR  # a local archive may also hold links and special files: listed, never read


class Archive(ABC):
    """Read (and, for demos/requests, write) access to the objects under one archive root."""

    uri: str

    @abstractmethod
    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ArchiveObject]:
        """Objects under `prefix` in key order (byte order of the '/'-joined key, as S3 lists them),
        only those after `start_after`: a listing can be resumed where it stopped."""

    @abstractmethod
    def read(self, key: str) -> bytes: ...

    @abstractmethod
    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of an object."""

    @abstractmethod
    def read_tail(self, key: str, length: int) -> bytes: ...

    @abstractmethod
    def write(self, key: str, data: bytes) -> None:
        """Store an object so that it is never visible half-written."""

    @abstractmethod
    def open_stream(self, key: str) -> BinaryIO:
        """A readable stream of the object, for copying it without holding it in memory."""

    def describe(self, key: str) -> ArchiveObject | None:
        """The object at exactly `key`, or None."""
        return next((o for o in self.list(key) if o.key == key), None)

    @abstractmethod
    def read_optional(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such object."""

    @abstractmethod
    def upload_file(self, path: Path, key: str) -> None:
        """Store a local file as `key`, never visible half-written (S3: one PUT or a completed multipart)."""

    @abstractmethod
    def download_file(self, key: str, path: Path) -> None:
        """Copy `key` to a local file, written atomically."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove `key` (no error when it is already gone)."""

    def presign(self, key: str, expires_s: int) -> str | None:
        """A URL anyone can GET `key` from until it expires; None where the store has no such thing."""
        return None


def _local_object(key: str, stat: os.stat_result) -> ArchiveObject:
    kind = REGULAR if stat_module.S_ISREG(stat.st_mode) else SYMLINK if stat_module.S_ISLNK(stat.st_mode) else SPECIAL
    return ArchiveObject(
        key=key,
        size=stat.st_size if kind == REGULAR else 0,
        etag=f"{stat.st_size:x}-{stat.st_mtime_ns:x}",  # cheap change marker, like nginx's
        last_modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
        kind=kind,
    )


class LocalArchive(Archive):
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ArchiveObject]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return
        rel = base.relative_to(self.root).as_posix()
        yield from self._walk(base, "" if rel == "." else rel + "/", start_after)

    def _walk(self, folder: Path, prefix: str, start_after: str | None) -> Iterator[ArchiveObject]:
        # Sorted by key as S3 would ("a/b" after "a.jpg": '/' sorts after '.'), so start_after can prune.
        with os.scandir(folder) as scan:
            entries = sorted(((e.name + "/" if e.is_dir(follow_symlinks=False) else e.name), e) for e in scan)
        for name, entry in entries:
            key = prefix + name
            if start_after is not None and key <= start_after and not start_after.startswith(key):
                continue
            if name.endswith("/"):
                yield from self._walk(Path(entry.path), key, start_after)
                continue
            if is_temp(name) or (start_after is not None and key <= start_after):
                continue
            yield _local_object(key, entry.stat(follow_symlinks=False))  # a link is described, never followed

    def describe(self, key: str) -> ArchiveObject | None:
        if ".." in key.split("/") or key.startswith("/"):
            return None
        try:
            stat = os.lstat(self.root / key)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return None if stat_module.S_ISDIR(stat.st_mode) else _local_object(key, stat)

    def _open(self, key: str) -> BinaryIO:
        """The regular file at `key`, opened without following any link; anything else is refused."""
        path = self.root / key
        if ".." in key.split("/") or key.startswith("/") or path.parent.resolve() != path.parent.absolute():
            raise NotARegularFile(f"{key}: outside the archive or through a link")
        if not stat_module.S_ISREG(os.lstat(path).st_mode):  # before opening: a FIFO would block the open
            raise NotARegularFile(f"{key}: not a regular file (a link, pipe or device is never read)")
        try:  # O_NONBLOCK: a file swapped for a pipe after the check still cannot hang the open
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise NotARegularFile(f"{key}: a symbolic link (never followed)") from err
            raise
        if not stat_module.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise NotARegularFile(f"{key}: not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    def read(self, key: str) -> bytes:
        with self._open(key) as handle:
            return handle.read()

    def open_stream(self, key: str) -> BinaryIO:
        return self._open(key)

    def read_optional(self, key: str) -> bytes | None:
        try:
            return self.read(key)
        except FileNotFoundError:
            return None

    def read_range(self, key: str, start: int, end: int) -> bytes:
        with self._open(key) as handle:
            handle.seek(start)
            return handle.read(max(0, end - start))

    def read_tail(self, key: str, length: int) -> bytes:
        with self._open(key) as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - length))
            return handle.read()

    def write(self, key: str, data: bytes) -> None:
        with atomic_file(self.root / key) as tmp:
            tmp.write_bytes(data)

    def upload_file(self, path: Path, key: str) -> None:
        with atomic_file(self.root / key) as tmp:
            shutil.copyfile(path, tmp)

    def download_file(self, key: str, path: Path) -> None:
        with self._open(key) as source, atomic_file(path) as tmp, open(tmp, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)


class S3Archive(Archive):
    """S3 or any S3-compatible server (MinIO, SeaweedFS) through boto3 with `endpoint_url`."""

    def __init__(self, bucket: str, prefix: str, client):
        from wildbench_assets.resources.s3_ranged import RangedGetter

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._ranged = RangedGetter(client, bucket)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ArchiveObject]:
        root = f"{self.prefix}/" if self.prefix else ""
        paginator = self.client.get_paginator("list_objects_v2")
        extra = {"StartAfter": root + start_after} if start_after else {}
        for page in paginator.paginate(Bucket=self.bucket, Prefix=root + prefix, **extra):
            for item in page.get("Contents", []):
                yield ArchiveObject(
                    key=item["Key"][len(root) :],
                    size=int(item["Size"]),
                    etag=item["ETag"].strip('"'),
                    last_modified=item["LastModified"].astimezone(UTC),
                )

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def open_stream(self, key: str) -> BinaryIO:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]

    def read_optional(self, key: str) -> bytes | None:
        try:
            return self.read(key)
        except self.client.exceptions.NoSuchKey:
            return None

    def read_range(self, key: str, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        return self._ranged.get(self._key(key), f"bytes={start}-{end - 1}")

    def read_tail(self, key: str, length: int) -> bytes:
        return self._ranged.get(self._key(key), f"bytes=-{length}")

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)  # S3 PUTs are atomic

    def upload_file(self, path: Path, key: str) -> None:
        # multipart above 8 MiB: the object appears only when the upload completes; a killed upload
        # leaves parts (not an object) that the bucket's lifecycle rule or the next writer aborts
        self.client.upload_file(str(path), self.bucket, self._key(key))

    def download_file(self, key: str, path: Path) -> None:
        with atomic_file(path) as tmp:
            self.client.download_file(self.bucket, self._key(key), str(tmp))

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def presign(self, key: str, expires_s: int) -> str | None:
        """Signed with SigV4 (AWS refuses SigV2 links on new buckets; 7 days at most), by the same
        credentials the client holds, frozen now: the link outlives nothing it was not signed for."""
        import boto3
        from botocore.config import Config

        frozen = self.client._request_signer._credentials.get_frozen_credentials()
        signer = boto3.session.Session().client(
            "s3", endpoint_url=self.client.meta.endpoint_url, region_name=self.client.meta.region_name,
            aws_access_key_id=frozen.access_key, aws_secret_access_key=frozen.secret_key,
            aws_session_token=frozen.token, config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
        return signer.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=expires_s)


S3_MAX_ATTEMPTS = 10  # jittered exponential backoff (each wait under 20 s): rides out a restart of the server


def s3_client(endpoint_url: str | None = None, access_key: str | None = None, secret_key: str | None = None,
              region: str | None = None, session_token: str | None = None, max_attempts: int = S3_MAX_ATTEMPTS):
    """The boto3 client of dagster-aws's `S3Resource`: standard-mode retries with backoff, then an error
    naming the endpoint. Keys left unset come from boto3's chain (environment, profile, role), which
    refreshes temporary credentials by itself."""
    from dagster_aws.s3 import S3Resource

    return S3Resource(endpoint_url=endpoint_url or None, aws_access_key_id=access_key or None,
                      aws_secret_access_key=secret_key or None, aws_session_token=session_token or None,
                      region_name=region or "us-east-1", max_attempts=max_attempts).get_client()


def open_archive(uri: str, endpoint_url: str | None = None, access_key: str | None = None,
                 secret_key: str | None = None, region: str | None = None, session_token: str | None = None,
                 max_attempts: int = S3_MAX_ATTEMPTS) -> Archive:
    """An archive from its URI: `s3://bucket[/prefix]` or a local folder path (`file://` allowed)."""
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise ValueError(f"archive URI {uri!r} names no bucket")
        return S3Archive(bucket, prefix, s3_client(endpoint_url, access_key, secret_key, region, session_token,
                                                     max_attempts))
    if "://" in uri and not uri.startswith("file://"):
        raise ValueError(f"archive URI {uri!r}: use a local path or s3://bucket/prefix")
    return LocalArchive(uri.removeprefix("file://"))


def open_store(uri: str, s3: ResourceWithS3Configuration) -> Archive:
    """The store at `uri`, its S3 client built from a resource's S3 settings (dagster-aws's fields)."""
    return open_archive(uri, s3.endpoint_url, s3.aws_access_key_id, s3.aws_secret_access_key, s3.region_name,
                        s3.aws_session_token, max(s3.max_attempts, S3_MAX_ATTEMPTS))


class ArchiveResource(ResourceWithS3Configuration):
    """The camera-trap archive named by one URI. The S3 settings (dagster-aws's: endpoint_url for MinIO or
    SeaweedFS, keys, region) apply to `s3://` URIs."""

    uri: str = Field(description="Local folder or s3://bucket/prefix")

    def open(self) -> Archive:
        return open_store(self.uri, self)
