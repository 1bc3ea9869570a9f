"""The taxonomy as a resource, so an archive's extension file is configuration, not code."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from wildbench_assets.taxonomy import Taxonomy, load_taxonomy


class TaxonomyResource(dg.ConfigurableResource):
    extension_file: str | None = Field(default=None, description="YAML adding species/parks to thesis Table 3.1")

    def load(self) -> Taxonomy:
        return load_taxonomy(self.extension_file)
