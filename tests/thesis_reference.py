"""The thesis's burst loop (section 4.1.2), kept verbatim as the reference our vectorised rule is
checked against — by the tests and by bench/bench_curation.py."""

import pandas as pd


def thesis_process_group(group: pd.DataFrame, time_interval: float = 1) -> list:
    """Verbatim except `kind="stable"`: the thesis's default quicksort leaves which of two same-second
    frames survives to chance, and no two implementations could then be compared."""
    dataframe = group.sort_values(by="date", kind="stable").reset_index(drop=True)
    prev_time = dataframe.loc[0, "date"]
    filtered = [dataframe.loc[0]]
    for _, row in dataframe.iterrows():
        time_diff = row["date"] - prev_time
        if time_diff.total_seconds() > time_interval:
            filtered.append(row)
            prev_time = row["date"]
    return filtered
