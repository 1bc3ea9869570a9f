"""Pure domain logic: no Dagster import, no I/O beyond the file-like objects handed in."""
