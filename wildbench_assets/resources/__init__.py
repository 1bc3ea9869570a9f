"""All I/O: the image archive, the Parquet tables, the taxonomy file. `build_resources` picks a deployment."""

from __future__ import annotations

import dagster as dg

from wildbench_assets.resources.archive import ArchiveResource
from wildbench_assets.resources.artifacts import ArtifactStore
from wildbench_assets.resources.detector import DetectorResource
from wildbench_assets.resources.inbox import RequestInbox
from wildbench_assets.resources.label_cache import LabelCache
from wildbench_assets.resources.parquet_io import ParquetIOManager
from wildbench_assets.resources.taxonomy import TaxonomyResource
from wildbench_assets.settings import default_archive_uri, default_data_dir, optional, taxonomy_file

DEPLOYMENTS = ("local", "prod")


def build_resources(deployment: str = "local") -> dict:
    """`local`: archive and data dir default to folders in the checkout, overridable by environment.
    `prod`: every location must come from the environment (S3/MinIO credentials included)."""
    if deployment not in DEPLOYMENTS:
        raise ValueError(f"unknown deployment {deployment!r}; expected one of {DEPLOYMENTS}")
    if deployment == "prod":
        archive = ArchiveResource(
            uri=dg.EnvVar("WILDBENCH_ARCHIVE"),
            endpoint_url=dg.EnvVar("WILDBENCH_S3_ENDPOINT_URL"),
            aws_access_key_id=dg.EnvVar("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=dg.EnvVar("AWS_SECRET_ACCESS_KEY"),
        )
        data_dir: str | dg.EnvVar = dg.EnvVar("WILDBENCH_DATA")
        inbox = RequestInbox(uri=dg.EnvVar("WILDBENCH_REQUESTS"), endpoint_url=dg.EnvVar("WILDBENCH_S3_ENDPOINT_URL"))
        submissions = RequestInbox(uri=dg.EnvVar("WILDBENCH_SUBMISSIONS"),
                                   endpoint_url=dg.EnvVar("WILDBENCH_S3_ENDPOINT_URL"))
    else:
        archive = ArchiveResource(uri=default_archive_uri(), endpoint_url=optional("WILDBENCH_S3_ENDPOINT_URL"))
        data_dir = default_data_dir()
        inbox = RequestInbox(uri=optional("WILDBENCH_REQUESTS") or f"{data_dir}/requests",
                             endpoint_url=optional("WILDBENCH_S3_ENDPOINT_URL"))
        submissions = RequestInbox(uri=optional("WILDBENCH_SUBMISSIONS") or f"{data_dir}/submissions",
                                   endpoint_url=optional("WILDBENCH_S3_ENDPOINT_URL"))
    return {
        "archive": archive,
        "taxonomy": TaxonomyResource(extension_file=taxonomy_file()),
        "parquet_io_manager": ParquetIOManager(base_dir=data_dir),
        "artifacts": ArtifactStore(base_dir=data_dir),
        "inbox": inbox,
        "submissions": submissions,
        "label_cache": LabelCache(base_dir=data_dir),
        "detector": DetectorResource(backend=optional("WILDBENCH_DETECTOR") or "mdlite",
                                     weights_path=optional("WILDBENCH_DETECTOR_WEIGHTS")),
    }
