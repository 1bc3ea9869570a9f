"""Running the real pipeline in tests: real resources on temp folders, an ephemeral instance."""

import dagster as dg

from wildbench_assets.assets import curation, ingest
from wildbench_assets.automation import JOBS
from wildbench_assets.resources.archive import ArchiveResource
from wildbench_assets.resources.parquet_io import ParquetIOManager
from wildbench_assets.resources.taxonomy import TaxonomyResource
from wildbench_assets.runner import archive_partitions, register_partitions, run_pipeline


def pipeline_defs(uri, data_dir, endpoint=None) -> dg.Definitions:
    return dg.Definitions(
        assets=dg.load_assets_from_modules([ingest, curation]),
        jobs=JOBS,
        resources={"archive": ArchiveResource(uri=str(uri), endpoint_url=endpoint), "taxonomy": TaxonomyResource(),
                   "parquet_io_manager": ParquetIOManager(base_dir=str(data_dir))},
        executor=dg.in_process_executor,
    )


def run_all(uri, data_dir, instance=None, selection=None, config_by_asset=None):
    """(instance, outcome) after every stage ran over every partition of the archive."""
    defs = pipeline_defs(uri, data_dir)
    instance = instance or dg.DagsterInstance.ephemeral()
    pairs = archive_partitions(defs.resources["archive"].open())
    register_partitions(instance, pairs)
    outcome = run_pipeline(defs, instance, pairs, selection=selection, config_by_asset=config_by_asset)
    return instance, outcome


def latest_checks(instance, asset: str) -> dict[str, list]:
    """check name -> evaluations recorded for the asset, oldest first."""
    from dagster import DagsterEventType, EventRecordsFilter

    events = instance.get_event_records(EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION))
    by_name: dict[str, list] = {}
    for record in sorted(events, key=lambda r: r.storage_id):
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if evaluation.asset_key == dg.AssetKey(asset):
            by_name.setdefault(evaluation.check_name, []).append(evaluation)
    return by_name
