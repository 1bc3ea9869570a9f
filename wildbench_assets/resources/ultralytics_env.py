"""Ultralytics offline: no font download, no pip auto-install, settings in a project-local folder.

Without this, ultralytics probes GitHub for Arial.ttf on every train/val and tries to pip-install
missing requirements at run time. Call before importing ultralytics.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from wildbench_assets.settings import local_work_dir, optional


def configure_ultralytics_offline(config_dir: str | Path | None = None) -> Path:
    folder = Path(config_dir or optional("YOLO_CONFIG_DIR") or local_work_dir() / "ultralytics")
    folder.mkdir(parents=True, exist_ok=True)
    import matplotlib

    font = Path(matplotlib.__file__).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):  # any TTF will do; ultralytics only checks the name
        if not (folder / name).exists():
            shutil.copy(font, folder / name)
    os.environ.update({"YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "0", "YOLO_CONFIG_DIR": str(folder)})
    return folder
