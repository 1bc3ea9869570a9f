"""Where custom dataset requests arrive (a folder or an S3 prefix) and where their outcome is written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import dagster as dg
from dagster_aws.s3.resources import ResourceWithS3Configuration
from pydantic import Field

from wildbench_assets.lib import submissions as sub
from wildbench_assets.lib.dataset_requests import PROGRESS_SUFFIX
from wildbench_assets.resources.archive import Archive, open_store


class RequestInbox(ResourceWithS3Configuration):
    """`<id>.json` files are requests; the pipeline answers with `<id>.result.json` or `<id>.error.json`."""

    uri: str = Field(description="Folder or s3://bucket/prefix watched for request files")

    def open(self) -> Archive:
        return open_store(self.uri, self)

    def read_item(self, item_id: str, suffixes: tuple[str, ...] = (".json",)) -> bytes | None:
        """The first of `<id><suffix>` present, in the order given; None if none is."""
        store = self.open()
        return next((raw for raw in (store.read_optional(f"{item_id}{s}") for s in suffixes) if raw is not None),
                    None)

    def submission_history(self, default_release: str | None, since: datetime) -> list[sub.Submission]:
        """The submissions that arrived at or after `since` (`lib.submissions.history`): what the
        submission limit counts."""
        store = self.open()
        listing = [(o.key, o.last_modified) for o in store.list() if "/" not in o.key]
        return sub.history(listing, store.read_optional, default_release, since)

    def arrival(self, item_id: str, suffixes: tuple[str, ...] = sub.SUBMISSION_SUFFIXES) -> datetime | None:
        """When `<id><suffix>` (the first present) last changed."""
        store = self.open()
        times = {o.key: o.last_modified for o in store.list() if o.key.startswith(item_id)}
        return next((times[f"{item_id}{s}"] for s in suffixes if f"{item_id}{s}" in times), None)

    def write_json(self, name: str, document: dict) -> None:
        self.open().write(name, json.dumps(document, indent=1, default=str).encode())

    def report_progress(self, item_id: str, stage: str, done: int = 0, total: int = 0) -> None:
        """`<id>.progress.json`: how far the run handling the item is (read by the portal's progress bar)."""
        self.write_json(f"{item_id}{PROGRESS_SUFFIX}", {"id": item_id, "stage": stage, "done": done, "total": total,
                                                        "at": datetime.now(UTC).isoformat()})

    def progress(self, item_id: str, stage: str):
        """`progress(done, total)` for a long step: reports it as the item's progress in `stage`."""
        return lambda done, total: self.report_progress(item_id, stage, done, total)

    def answer_error(self, item_id: str, error: str, **extra) -> None:
        self.write_json(f"{item_id}.error.json", {"id": item_id, "error": error, **extra,
                                                 "at": datetime.now(UTC).isoformat()})

    @contextmanager
    def answering(self, item_id: str) -> Iterator[None]:
        """Whatever fails inside is answered with `<id>.error.json` (then re-raised): a request or
        submission never waits forever for an outcome that will not come."""
        try:
            yield
        except dg.Failure:
            raise  # already answered with its own, specific reason
        except Exception as err:
            # the answer goes to whoever sent the item: the kind of failure, not server paths or internals
            # (the run's log in the Dagster UI has the whole error)
            self.answer_error(item_id, f"the pipeline failed while handling it ({type(err).__name__}); "
                                       "the operator's run log has the details")
            raise
