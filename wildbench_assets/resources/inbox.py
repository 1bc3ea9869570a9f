"""Where custom dataset requests arrive (a folder or an S3 prefix) and where their outcome is written."""

from __future__ import annotations

import json

import dagster as dg
from pydantic import Field

from wildbench_assets.resources.archive import Archive, open_archive


class RequestInbox(dg.ConfigurableResource):
    """`<id>.json` files are requests; the pipeline answers with `<id>.result.json` or `<id>.error.json`."""

    uri: str = Field(description="Folder or s3://bucket/prefix watched for request files")
    endpoint_url: str | None = None

    def open(self) -> Archive:
        return open_archive(self.uri, self.endpoint_url)

    def write_json(self, name: str, document: dict) -> None:
        self.open().write(name, json.dumps(document, indent=1, default=str).encode())
