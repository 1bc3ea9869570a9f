"""Tables between assets as Parquet, one folder per asset, one file per partition, written atomically."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from wildbench_assets.resources.atomic import atomic_file


def partition_file_name(partition_key: str | dg.MultiPartitionKey | None) -> str:
    """`snieves/2026-11-28.parquet` for park x day keys, `<key>.parquet` else, `data.parquet` if none.

    Plain folder names, not hive-style `park=snieves`: pyarrow would add those as partition columns that
    clash with the table's own `park` column, and `pd.read_parquet(folder)` must just work."""
    if partition_key is None:
        return "data.parquet"
    if isinstance(partition_key, dg.MultiPartitionKey):
        parts = [key for _dim, key in sorted(partition_key.keys_by_dimension.items(), reverse=True)]
        return "/".join(parts) + ".parquet"
    return f"{partition_key}.parquet"


def _stable_schema(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as strings even when a partition holds only nulls in them (else Arrow writes type
    null for that file, and reading the asset's folder as one dataset fails on the mismatch)."""
    text = [c for c in frame.columns if frame[c].dtype == object
            and pd.api.types.infer_dtype(frame[c], skipna=True) in ("string", "empty")]
    return frame.astype({c: "string" for c in text}) if text else frame


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    frame = _stable_schema(frame)
    with atomic_file(path) as tmp:
        frame.to_parquet(tmp, index=False)


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores DataFrames under `<base_dir>/<asset>/<partition>.parquet` so anyone can open a stage with pandas."""

    base_dir: str = Field(description="The data directory (WILDBENCH_DATA)")

    def _path(self, asset_key: dg.AssetKey, partition_key) -> Path:
        return Path(self.base_dir, *asset_key.path, partition_file_name(partition_key))

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        if obj is None:
            return
        keys = context.asset_partition_keys if context.has_asset_partitions else [None]
        if len(keys) != 1:
            raise ValueError(f"{context.asset_key.to_user_string()}: one partition per output, got {len(keys)}")
        key = context.asset_partition_key if context.has_asset_partitions else None
        path = self._path(context.asset_key, key)
        write_parquet_atomic(obj, path)
        schema = dg.TableSchema(columns=[dg.TableColumn(str(name), str(dtype)) for name, dtype in obj.dtypes.items()])
        context.add_output_metadata({"path": dg.MetadataValue.path(str(path)), "dagster/row_count": len(obj),
                                     "dagster/column_schema": schema})

    def load_partition(self, asset: str, partition_key: str | None = None) -> pd.DataFrame | None:
        """One stored partition of an asset (single-dimension key), or None if not materialized."""
        path = self._path(dg.AssetKey(asset), partition_key)
        return pd.read_parquet(path) if path.exists() else None

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        """One partition, or every mapped partition concatenated. Partitions that were never
        materialized are normal (a park x day cross product is mostly gaps, a rejected submission has
        no row) and are skipped; none at all gives an empty frame. A partition the instance recorded
        as materialized whose file is gone is an error: the table would silently shrink."""
        asset_key = context.asset_key
        if not context.has_asset_partitions:
            return pd.read_parquet(self._path(asset_key, None))
        partitions_def = context.asset_partitions_def
        materialized = context.instance.get_materialized_partitions(asset_key)
        frames, lost = [], []
        for key in context.asset_partition_keys:
            path = self._path(asset_key, partitions_def.get_partition_key_from_str(key)
                              if isinstance(partitions_def, dg.MultiPartitionsDefinition) else key)
            if path.exists():
                frames.append(pd.read_parquet(path))
            elif str(key) in materialized:
                lost.append(str(key))
        if lost:
            raise FileNotFoundError(
                f"{asset_key.to_user_string()}: {len(lost)} materialized partitions have no file under "
                f"{self.base_dir} (e.g. {lost[:3]}); re-materialize them (wildbench run --force) or restore the files")
        if not frames:
            context.log.warning(f"{asset_key.to_user_string()}: none of the {len(context.asset_partition_keys)} "
                                "mapped partitions is materialized: an empty table")
            return pd.DataFrame()
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
