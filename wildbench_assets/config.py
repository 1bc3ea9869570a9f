"""dg.Config classes shared by assets and sensors."""

import dagster as dg
from pydantic import Field


class ImageMetadataConfig(dg.Config):
    max_failed_share: float = Field(
        default=0.05, ge=0, le=1,
        description="Warn when more than this share of a partition's objects is corrupt/truncated/empty/not an image",
    )
    max_workers: int = Field(default=16, ge=1, description="Parallel header reads")
    header_block_bytes: int = Field(default=16 * 1024, ge=1024, description="Ranged-read size for image headers")
