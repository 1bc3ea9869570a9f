"""Header-only inspection of many archive objects in parallel threads (the work is I/O-bound)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, fields
from datetime import datetime, timedelta

import pandas as pd

from wildbench_assets.lib import image_header as hdr
from wildbench_assets.lib.expectations import Rule
from wildbench_assets.lib.image_header import NOT_A_FILE, TAIL_BYTES, ImageHeader, read_image_header
from wildbench_assets.lib.ranged import RangedFile

FetchRange = Callable[[str, int, int], bytes]
FetchTail = Callable[[str, int], bytes]


def inspect_object(key: str, size: int, fetch_range: FetchRange, fetch_tail: FetchTail, now: datetime,
                   block_size: int = 16 * 1024) -> dict:
    """One row of image metadata; I/O failures become a `corrupt` row with the error as reason."""
    try:
        if size == 0:
            header = read_image_header(RangedFile(lambda s, e: b"", 0), 0, b"", now)
            fetched = 0
        else:
            handle = RangedFile(lambda start, end: fetch_range(key, start, end), size, block_size)
            tail = fetch_tail(key, TAIL_BYTES)
            header = read_image_header(handle, size, tail, now)
            fetched = handle.bytes_fetched + len(tail)
    except Exception as err:  # noqa: BLE001 - a failed object is a row with its reason, never a crash
        header = ImageHeader("corrupt", f"image access failure: {type(err).__name__}: {err}")
        fetched = 0
    return {"path": key, **asdict(header), "bytes_read": fetched}


def not_a_file_row(key: str, kind: str) -> dict:
    """The row of a link or special file: recorded with its reason, never opened."""
    return {"path": key, **asdict(ImageHeader(NOT_A_FILE, f"{kind} in the archive: never read or followed")),
            "bytes_read": 0}


def inspect_objects(objects: Iterable[tuple[str, int]], fetch_range: FetchRange, fetch_tail: FetchTail,
                    now: datetime, max_workers: int = 16, block_size: int = 16 * 1024) -> list[dict]:
    """Rows for (key, size) pairs, in input order."""
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        return list(pool.map(lambda item: inspect_object(item[0], item[1], fetch_range, fetch_tail, now, block_size),
                             objects))


HEADER_COLUMNS = ["path", *(f.name for f in fields(ImageHeader)), "bytes_read"]  # of an empty partition


RAW_COLUMNS_KEPT = ["path", "park", "species", "camera", "seq_id", "bytes", "etag"]
METADATA_COLUMNS = [*RAW_COLUMNS_KEPT, *HEADER_COLUMNS[1:]]


def metadata_table(raw: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
    headers = pd.DataFrame(rows) if rows else pd.DataFrame(columns=HEADER_COLUMNS)
    frame = raw[RAW_COLUMNS_KEPT].merge(headers, on="path", how="left")
    frame["captured_at"] = pd.to_datetime(frame["captured_at"])
    for column in ("width", "height"):
        frame[column] = frame[column].astype("Int64")
    return frame


def metadata_rules(raw_rows: int, now: datetime) -> dict[str, list]:
    """The Great Expectations rules of the metadata table, by the check they make up: one row per
    listed object, statuses with reasons, plausible capture dates, readable sizes."""
    readable = sorted(set(hdr.STATUSES) - hdr.UNREADABLE)
    on_readable = {"row_condition": f"status.isin({readable})", "condition_parser": "pandas"}
    return {
        "one_row_per_raw_image": [Rule("expect_table_row_count_to_equal", {"value": raw_rows}),
                                  Rule("expect_column_values_to_be_unique", {"column": "path"})],
        "valid_statuses": [
            Rule("expect_column_values_to_be_in_set", {"column": "status", "value_set": list(hdr.STATUSES)}),
            Rule("expect_column_values_to_not_be_null",
                 {"column": "reason", "row_condition": 'status!="ok"', "condition_parser": "pandas"}),
        ],
        "plausible_capture_dates": [
            Rule("expect_column_values_to_not_be_null",
                 {"column": "captured_at", "row_condition": 'status=="ok"', "condition_parser": "pandas"}),
            Rule("expect_column_values_to_be_between", {"column": "captured_at", "min_value": hdr.EARLIEST_PLAUSIBLE,
                                                        "max_value": now + timedelta(days=1)}),
        ],
        "readable_dimensions": [
            Rule("expect_column_values_to_be_between", {"column": "width", "min_value": 1, **on_readable}),
            Rule("expect_column_values_to_be_between", {"column": "height", "min_value": 1, **on_readable}),
        ],
    }
