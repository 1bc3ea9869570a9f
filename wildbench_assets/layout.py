"""The data folder's layout: every path under `<WILDBENCH_DATA>/artifacts/` (and `snapshots/`), in one place.

Plain functions returning paths relative to the artifact store's root (posix, no leading slash), so the
same names serve a local folder and an S3 prefix. Every reader and writer asks here; nothing else spells
`releases/<id>/…`, `models/…`, `datasets/…` or `hidden/…` (tests/test_homes.py greps for it).

```
releases/<release>/            one frozen release (published)
  manifest.csv                 its seal: written last, its presence says the release was cut
  manifest.sha256  release.json  datasheet.json  datasheet.md  leak_audit.csv
  downloads/<split>.zip        train/val with labels, test/test_seen by public id
  hidden/truth.coco.json       the hidden test truth (never served)
  camtrap-dp/<file>            Camtrap DP 1.0.2
datasets/<release>/            training_datasets (YOLO + VOC + COCO, dataset.yaml)
models/<release>/<model>/      weights.pt, card.json, test_predictions.coco.json
models/.work-<model>-<run>/    a training run's scratch folder
archives/<split>.zip           split_archives
splits/assignments/<key>.parquet  benchmark_splits' assignment, computed once per content
labels/<split>.megadetector-1.6.json          detection_labels' batch output
predictions/<park>/<day>.megadetector-1.6.json  new_image_predictions' batch output
requests/<request>.zip  requests/<request>/spec.json   custom_export
hidden/releases/<release>/     the record of every cut (manifest.csv, release.json, id_key)
hidden/requests/<request>/published.csv        what a request handed out with labels
hidden/<split>_labelled.zip    the labelled copy of a test split's archive
```

One folder sits beside `artifacts/`, in the Parquet IO manager's root (`<WILDBENCH_DATA>/` itself), since
that manager reads and writes it:
```
snapshots/<asset>/<upstream>/<partition>.parquet   an input snapshot: the upstream table a step of <asset>
                                                   last loaded, and which upstream files it came from
```
"""

from __future__ import annotations

RELEASES = "releases"
DATASETS = "datasets"
MODELS = "models"
ARCHIVES = "archives"
REQUESTS = "requests"
HIDDEN = "hidden"
CUT_RECORDS = f"{HIDDEN}/releases"
HANDED_OUT = f"{HIDDEN}/requests"

# --- inside a release folder (also a staging folder's layout, before it is published) ------------------
MANIFEST = "manifest.csv"           # the seal: uploaded last, so its presence says the folder is whole
MANIFEST_SHA256 = "manifest.sha256"
FACTS = "release.json"
DATASHEET = "datasheet.json"
DATASHEET_MD = "datasheet.md"
LEAK_AUDIT = "leak_audit.csv"
DOWNLOADS = "downloads"
TRUTH = f"{HIDDEN}/truth.coco.json"
CAMTRAP_DP = "camtrap-dp"
ID_KEY = "id_key"                   # in a cut record only


def download_name(split: str) -> str:
    """A split's download inside a release folder."""
    return f"{DOWNLOADS}/{split}.zip"


def release_dir(release: str) -> str:
    return f"{RELEASES}/{release}"


def release_file(release: str, name: str) -> str:
    """`name` (one of the names above, e.g. MANIFEST, TRUTH, `download_name(split)`) of a release."""
    return f"{release_dir(release)}/{name}"


def release_download(release: str, file_name: str) -> str:
    """A release's download by file name (`test.zip`)."""
    return release_file(release, f"{DOWNLOADS}/{file_name}")


def camtrap_file(release: str, name: str) -> str:
    return release_file(release, f"{CAMTRAP_DP}/{name}")


def release_of(key: str, name: str, root: str = RELEASES) -> str | None:
    """The release whose `name` (e.g. MANIFEST) the listed key `<root>/<release>/<name>` is; None if it is
    anything else (a deeper file, a scratch folder starting with '.')."""
    prefix, suffix = f"{root}/", f"/{name}"
    if not (key.startswith(prefix) and key.endswith(suffix)):
        return None
    release = key[len(prefix):-len(suffix)]
    return release if release and "/" not in release and not release.startswith(".") else None


def cut_record_dir(release: str) -> str:
    return f"{CUT_RECORDS}/{release}"


def handed_out_file(request_id: str) -> str:
    return f"{HANDED_OUT}/{request_id}/published.csv"


def datasets_dir(release: str) -> str:
    """A release's training datasets (`training_datasets`)."""
    return f"{DATASETS}/{release}"


def model_dir(model: str, release: str) -> str:
    """A model trained on a release."""
    return f"{MODELS}/{release}/{model}"


def model_file(model: str, release: str, name: str) -> str:
    """`weights.pt`, `card.json` or `test_predictions.coco.json` of a model trained on a release."""
    return f"{model_dir(model, release)}/{name}"


def training_workdir(model: str, run_id: str) -> str:
    """A training run's scratch folder (concurrent runs never share one; hidden from syncs by its dot)."""
    return f"{MODELS}/.work-{model}-{run_id[:8]}"


def split_archive(split: str) -> str:
    return f"{ARCHIVES}/{split}.zip"


def labelled_test_archive(split: str) -> str:
    """The maintainers' labelled copy of a test split's archive (never published)."""
    return f"{HIDDEN}/{split}_labelled.zip"


SPLIT_ASSIGNMENTS = "splits/assignments"


def split_assignment(key: str) -> str:
    """The whole split assignment of one (curated content, plan, splitting code) `key`."""
    return f"{SPLIT_ASSIGNMENTS}/{key}.parquet"


def labels_batch_file(split: str) -> str:
    return f"labels/{split}.megadetector-1.6.json"


def predictions_batch_file(park: str, day: str) -> str:
    return f"predictions/{park}/{day}.megadetector-1.6.json"


def request_zip(request_id: str) -> str:
    return f"{REQUESTS}/{request_id}.zip"


def request_spec(request_id: str) -> str:
    return f"{REQUESTS}/{request_id}/spec.json"


SNAPSHOTS = "snapshots"  # relative to the data folder (the Parquet IO manager's root), not to artifacts/


def input_snapshot(asset: str, upstream: str, partition: str | None) -> str:
    """The input snapshot of `upstream` as the `partition` step of `asset` loads it
    (`resources/input_snapshot.py`), e.g. `snapshots/curated_images/image_metadata/snieves.parquet`."""
    return f"{SNAPSHOTS}/{asset}/{upstream}/{partition if partition is not None else 'all'}.parquet"
