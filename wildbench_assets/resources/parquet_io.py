"""Tables between assets as Parquet, one folder per asset, one file per partition, written atomically,
under a local folder or an `s3://bucket/prefix` (production), so `pd.read_parquet("<data>/<asset>")` opens a
stage either way."""

from __future__ import annotations

import io
from collections.abc import Mapping

import dagster as dg
import pandas as pd
from dagster_aws.s3.resources import ResourceWithS3Configuration
from pydantic import Field

from wildbench_assets import layout
from wildbench_assets.resources.archive import Archive, open_store
from wildbench_assets.resources.input_snapshot import SNAPSHOT_INPUT, InputRead, load_partitions, record_read

PARQUET_MAGIC = b"PAR1"  # the last four bytes of every Parquet file (and its first four)


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


def parquet_bytes(frame: pd.DataFrame, row_group_size: int | None = None,
                  footer: Mapping[bytes, bytes] | None = None) -> bytes:
    """The table as Parquet; `footer`: extra key-value metadata for the file's footer."""
    buffer = io.BytesIO()
    if footer is None:
        _stable_schema(frame).to_parquet(buffer, index=False, row_group_size=row_group_size)
        return buffer.getvalue()
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(_stable_schema(frame), preserve_index=False)
    pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), **footer}), buffer,
                   row_group_size=row_group_size)
    return buffer.getvalue()


class UnreadableTable(ValueError):
    """A stored table file that is not readable Parquet (truncated, overwritten, garbage); names the file."""


def read_parquet_bytes(data: bytes | None, where: str = "a table file") -> pd.DataFrame | None:
    if data is None:
        return None
    try:
        return pd.read_parquet(io.BytesIO(data))
    except Exception as err:  # noqa: BLE001 - pyarrow raises several kinds for garbage
        raise UnreadableTable(f"{where} is not a readable Parquet file ({type(err).__name__}: {err}); delete it "
                              "and re-materialize its partition (wildbench run --force), or restore it") from None


class ParquetIOManager(ResourceWithS3Configuration, dg.ConfigurableIOManager):
    """Stores DataFrames under `<base_dir>/<asset>/<partition>.parquet` so anyone can open a stage with pandas.
    `base_dir` is a folder or `s3://bucket/prefix`; the S3 settings are dagster-aws's."""

    base_dir: str = Field(description="The data directory (WILDBENCH_DATA): a folder or s3://bucket/prefix")
    input_snapshots: bool = Field(
        default=True, description="Inputs declared with SNAPSHOT_INPUT in their AssetIn metadata read only the "
        "upstream files that are new or changed since the step's last load (resources/input_snapshot.py)")

    def _store(self) -> Archive:
        return open_store(self.base_dir, self)

    @staticmethod
    def _key(asset_key: dg.AssetKey, partition_key) -> str:
        return "/".join([*asset_key.path, partition_file_name(partition_key)])

    def uri(self, asset_key: dg.AssetKey, partition_key=None) -> str:
        return f"{self.base_dir.rstrip('/')}/{self._key(asset_key, partition_key)}"

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        if obj is None:
            return
        keys = context.asset_partition_keys if context.has_asset_partitions else [None]
        if len(keys) != 1:  # a run over many partitions (a backfill): a dict partition key -> table
            self._handle_partitions(context, keys, obj)
            return
        key = context.asset_partition_key if context.has_asset_partitions else None
        self._store().write(self._key(context.asset_key, key), parquet_bytes(obj))  # atomic on both backends
        schema = dg.TableSchema(columns=[dg.TableColumn(str(name), str(dtype)) for name, dtype in obj.dtypes.items()])
        context.add_output_metadata({"path": dg.MetadataValue.path(self.uri(context.asset_key, key)),
                                     "dagster/row_count": len(obj), "dagster/column_schema": schema})

    def _handle_partitions(self, context: dg.OutputContext, keys, tables) -> None:
        name = context.asset_key.to_user_string()
        if not isinstance(tables, Mapping) or set(map(str, tables)) != set(map(str, keys)):
            raise ValueError(f"{name}: a run over {len(keys)} partitions must output a dict with one table each")
        store, definition = self._store(), context.asset_partitions_def
        by_name = {str(k): v for k, v in tables.items()}
        for key in keys:
            typed = (definition.get_partition_key_from_str(str(key))
                     if isinstance(definition, dg.MultiPartitionsDefinition) else key)
            store.write(self._key(context.asset_key, typed), parquet_bytes(by_name[str(key)]))
        # output metadata would be the same for every partition: the asset adds each one's own counts

    def damaged(self, asset_key: dg.AssetKey, partition_keys, partitions_def=None) -> dict:
        """partition key -> why its stored file is unusable, for partitions the instance recorded as
        materialized: the file is gone, or is not Parquet (no `PAR1` at its end: garbage or truncated).
        One listing of the asset's folder, then one 4-byte read per file."""
        store = self._store()
        listed = {o.key: o for o in store.list("/".join(asset_key.path) + "/")}
        found = {}
        for key in partition_keys:
            typed = (partitions_def.get_partition_key_from_str(key)
                     if key is not None and isinstance(partitions_def, dg.MultiPartitionsDefinition) else key)
            name = self._key(asset_key, typed)
            if name not in listed:
                found[key] = f"{self.base_dir.rstrip('/')}/{name} is missing"
            elif listed[name].size < 12 or store.read_tail(name, 4) != PARQUET_MAGIC:
                found[key] = f"{self.base_dir.rstrip('/')}/{name} is not a Parquet file"
        return found

    def load_partition(self, asset: str, partition_key: str | None = None) -> pd.DataFrame | None:
        """One stored partition of an asset (single-dimension key), or None if not materialized."""
        key = self._key(dg.AssetKey(asset), partition_key)
        return read_parquet_bytes(self._store().read_optional(key), f"{self.base_dir.rstrip('/')}/{key}")

    def load_materialized(self, asset: str, instance: dg.DagsterInstance, partitions_def,
                          columns: list[str] | None = None) -> pd.DataFrame:
        """Every partition the instance recorded as materialized, concatenated (`columns`: only those are
        read), for a step that needs a declared upstream only sometimes (`AssetDep`, read on demand)."""
        asset_key, store = dg.AssetKey(asset), self._store()
        frames, lost = [], []
        for key in sorted(instance.get_materialized_partitions(asset_key)):
            partition = (partitions_def.get_partition_key_from_str(key)
                         if isinstance(partitions_def, dg.MultiPartitionsDefinition) else key)
            data = store.read_optional(self._key(asset_key, partition))
            if data is None:
                lost.append(key)
                continue
            try:
                frames.append(pd.read_parquet(io.BytesIO(data), columns=columns))
            except Exception as err:  # noqa: BLE001 - pyarrow raises several kinds for garbage
                raise UnreadableTable(f"{self.uri(asset_key, partition)} is not a readable Parquet file "
                                      f"({type(err).__name__}: {err})") from None
        if lost:
            raise FileNotFoundError(f"{asset}: {len(lost)} materialized partitions have no file under "
                                    f"{self.base_dir} (e.g. {lost[:3]}); re-materialize them (wildbench run "
                                    "--force) or restore the files")
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns or [])

    def load_every_partition(self, asset: str) -> pd.DataFrame | None:
        """Every stored partition of an asset concatenated, or None if none is stored: one listing, then each
        file read, the same on a folder and on S3 (readers outside a run, like the portal)."""
        store = self._store()
        keys = sorted(o.key for o in store.list(f"{asset}/") if o.key.endswith(".parquet"))
        frames = [read_parquet_bytes(store.read(key), f"{self.base_dir.rstrip('/')}/{key}") for key in keys]
        return pd.concat(frames, ignore_index=True) if frames else None

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        """One partition, or every mapped partition concatenated. Partitions that were never
        materialized are normal (a park x day cross product is mostly gaps, a rejected submission has
        no row) and are skipped; none at all gives an empty frame. A partition the instance recorded
        as materialized whose file is gone is an error: the table would silently shrink.

        An input declared with `SNAPSHOT_INPUT` (`dg.AssetIn(metadata={SNAPSHOT_INPUT: True})`) reads only
        the files that are new or changed since its step's last load and takes the rest from its snapshot
        (`resources/input_snapshot.py`); the answer is the same. What each load read is recorded
        (`input_snapshot.last_read`)."""
        asset_key, store = context.asset_key, self._store()
        if not context.has_asset_partitions:
            return read_parquet_bytes(store.read(self._key(asset_key, None)), self.uri(asset_key))
        partitions_def = context.asset_partitions_def
        materialized = context.instance.get_materialized_partitions(asset_key)
        wanted = [(str(key), self._key(asset_key, partitions_def.get_partition_key_from_str(key)
                                       if isinstance(partitions_def, dg.MultiPartitionsDefinition) else key))
                  for key in context.asset_partition_keys]
        if self.input_snapshots and context.definition_metadata.get(SNAPSHOT_INPUT) and len(wanted) > 1:
            frame, read, lost = self._load_with_snapshot(context, store, wanted, materialized)
        else:
            frame, read, lost = self._load_every_file(store, wanted, materialized)
        if lost:
            raise FileNotFoundError(
                f"{asset_key.to_user_string()}: {len(lost)} materialized partitions have no file under "
                f"{self.base_dir} (e.g. {lost[:3]}); re-materialize them (wildbench run --force) or restore the files")
        try:
            run_id = context.step_context.run_id
        except dg.DagsterInvariantViolationError:  # an InputContext built outside a run
            run_id = None
        record_read(run_id, asset_key.to_user_string(),
                    context.partition_key if context.has_partition_key else None, read)
        if read.snapshot != "off":  # (one event more per load: only where it says something)
            context.log.info(f"{asset_key.to_user_string()}: {read.files_read} of {read.files_mapped} mapped "
                             f"files read ({read.rows_read} rows, {read.bytes_read} bytes with the snapshot), "
                             f"snapshot {read.snapshot}")
        if frame is None:
            context.log.warning(f"{asset_key.to_user_string()}: none of the {len(context.asset_partition_keys)} "
                                "mapped partitions is materialized: an empty table")
            return pd.DataFrame()
        return frame

    def _load_every_file(self, store: Archive, wanted, materialized) -> tuple[pd.DataFrame | None, InputRead, list]:
        read, frames, lost = InputRead(files_mapped=len(wanted)), [], []
        for partition, key in wanted:
            data = store.read_optional(key)
            if data is None:
                if partition in materialized:
                    lost.append(partition)
                continue
            frames.append(read_parquet_bytes(data, f"{self.base_dir.rstrip('/')}/{key}"))
            read.files_read += 1
            read.rows_read += len(frames[-1])
            read.bytes_read += len(data)
        frame = (pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]) if frames else None
        read.rows = 0 if frame is None else len(frame)
        return frame, read, lost

    def _load_with_snapshot(self, context: dg.InputContext, store: Archive, wanted, materialized):
        declared = context.definition_metadata[SNAPSHOT_INPUT]
        owner = declared if isinstance(declared, str) else context.op_def.name
        snapshot = layout.input_snapshot(owner, context.asset_key.to_user_string(),
                                         context.partition_key if context.has_partition_key else None)
        return load_partitions(store, snapshot, wanted, {str(k) for k in materialized},
                               lambda key, data: read_parquet_bytes(data, f"{self.base_dir.rstrip('/')}/{key}"),
                               context.log.warning)
