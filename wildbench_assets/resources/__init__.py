"""All I/O: the image archive, the Parquet tables, the taxonomy file. `build_resources` picks a deployment."""

from __future__ import annotations

import dagster as dg

from wildbench_assets.resources.archive import ArchiveResource
from wildbench_assets.resources.artifacts import ArtifactStore
from wildbench_assets.resources.day_keys import DayKeyLists
from wildbench_assets.resources.detector import DetectorResource
from wildbench_assets.resources.inbox import RequestInbox
from wildbench_assets.resources.label_cache import LabelCache
from wildbench_assets.resources.parquet_io import ParquetIOManager
from wildbench_assets.resources.taxonomy import TaxonomyResource
from wildbench_assets.settings import DEPLOYMENTS, default_archive_uri, default_data_dir, optional, taxonomy_file


def build_resources(deployment: str = "local") -> dict:
    """`local`: archive and data dir default to folders in the checkout, overridable by environment.
    `prod`: every location must come from the environment (S3/MinIO credentials included)."""
    if deployment not in DEPLOYMENTS:
        raise ValueError(f"unknown deployment {deployment!r}; expected one of {DEPLOYMENTS}")
    if deployment == "prod":
        # Every location from the environment; the S3 keys stay EnvVars, so their values never reach run
        # config or event records (boto3 would also find them in the environment by itself).
        s3 = {"endpoint_url": dg.EnvVar("WILDBENCH_S3_ENDPOINT_URL"),
              "aws_access_key_id": dg.EnvVar("AWS_ACCESS_KEY_ID"),
              "aws_secret_access_key": dg.EnvVar("AWS_SECRET_ACCESS_KEY")}
        archive_uri: str | dg.EnvVar = dg.EnvVar("WILDBENCH_ARCHIVE")
        data_dir: str | dg.EnvVar = dg.EnvVar("WILDBENCH_DATA")
        requests_uri: str | dg.EnvVar = dg.EnvVar("WILDBENCH_REQUESTS")
        submissions_uri: str | dg.EnvVar = dg.EnvVar("WILDBENCH_SUBMISSIONS")
        cache = optional("WILDBENCH_CACHE")
        day_keys_uri: str | dg.EnvVar = dg.EnvVar("WILDBENCH_DAY_KEYS")
    else:
        s3 = {"endpoint_url": optional("WILDBENCH_S3_ENDPOINT_URL")}
        archive_uri, data_dir = default_archive_uri(), default_data_dir()
        requests_uri = optional("WILDBENCH_REQUESTS") or f"{data_dir}/requests"
        submissions_uri = optional("WILDBENCH_SUBMISSIONS") or f"{data_dir}/submissions"
        cache = optional("WILDBENCH_CACHE")
        day_keys_uri = optional("WILDBENCH_DAY_KEYS") or f"{data_dir}/day_keys"
    return {
        "archive": ArchiveResource(uri=archive_uri, **s3),
        "taxonomy": TaxonomyResource(extension_file=taxonomy_file()),
        "parquet_io_manager": ParquetIOManager(base_dir=data_dir, **s3),
        "artifacts": ArtifactStore(base_dir=data_dir, cache_dir=cache, **s3,
                                   public_endpoint_url=optional("WILDBENCH_S3_PUBLIC_ENDPOINT_URL")),
        "inbox": RequestInbox(uri=requests_uri, **s3),
        "submissions": RequestInbox(uri=submissions_uri, **s3),
        "label_cache": LabelCache(base_dir=data_dir, **s3),
        "day_keys": DayKeyLists(uri=day_keys_uri, **s3),
        "detector": DetectorResource(backend=optional("WILDBENCH_DETECTOR") or "mdlite",
                                     weights_path=optional("WILDBENCH_DETECTOR_WEIGHTS")),
    }
