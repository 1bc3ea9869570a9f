#!/usr/bin/env bash
# The model packages that cannot be plain dependencies in pyproject.toml. Idempotent. Usage: install-ml.sh VENV
#  - zamba: only its MegadetectorLite checkpoint is used; its pins (pydantic<2, numpy<2) conflict with
#    Dagster's, so it goes in without dependencies.
#  - ultralytics-yolov5 0.1.1 (YOLOv5, the MegaDetector v5 architecture): its sdist's setup.py downloads its
#    README from GitHub at build time, which fails offline; built here with the README it ships. Its
#    pins (protobuf<=3.20.1) would break Dagster, so it goes in without dependencies too; the ones it
#    needs at run time are listed below (setuptools<81: yolov5 imports pkg_resources). Its six uses of
#    np.int/np.float (gone since NumPy 1.24) are patched to int/float while building, and one clamp
#    that newer torch rejects.
#  - megadetector 10.0.28 hard-requires that package, so it goes in without dependencies as well. Its
#    utils import pytest at module level (the batch-output validator reaches them), so pytest is a run-time
#    dependency here, not only a test one (an image without the test extra fails new_image_predictions).
set -euo pipefail
venv="${1:-.venv}"
pip="$venv/bin/pip"
py="$venv/bin/python"
"$pip" install -q --no-deps zamba==2.7.2
yolov5_ok() {  # installed, and already patched for NumPy >= 1.24 (np.int / np.float are gone)
  "$py" - <<'PY' 2>/dev/null
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("yolov5")
root = pathlib.Path(spec.origin).parent
texts = [p.read_text() for p in root.rglob("*.py")]
sys.exit(any("astype(np.int)" in t or "gain[3] - 1)," in t for t in texts))
PY
}
if ! yolov5_ok; then
  tmp="$(mktemp -d)"
  TMPDIR="$tmp" "$pip" download -q --no-deps --no-binary :all: --no-build-isolation --no-clean \
    ultralytics-yolov5==0.1.1 -d "$tmp/dl" >/dev/null 2>&1 || true   # fails at metadata: we only want the source
  src="$(find "$tmp" -maxdepth 3 -name setup.py -path '*ultralytics-yolov5*' -printf '%h\n' | head -n 1)"
  [ -n "$src" ] || { echo "could not fetch the ultralytics-yolov5 sdist" >&2; exit 1; }
  sed -i "s|^README = request.urlopen(.*|README = open('README.md', encoding='utf-8').read()|" "$src/setup.py"
  # NumPy 1.24 removed the np.int / np.float aliases this 2022 release still uses (six places).
  find "$src/yolov5" -name '*.py' -exec sed -i 's/astype(np\.int)/astype(int)/g; s/astype(np\.float)/astype(float)/g' {} +
  # torch >= 1.12 refuses to clamp a long tensor with float bounds (fixed upstream after this release).
  sed -i 's/gj.clamp_(0, gain\[3\] - 1), gi.clamp_(0, gain\[2\] - 1)/gj.clamp_(0, int(gain[3]) - 1), gi.clamp_(0, int(gain[2]) - 1)/' \
    "$src/yolov5/utils/loss.py"
  "$pip" install -q --no-deps --no-build-isolation --force-reinstall "$src"
  rm -rf "$tmp"
fi
"$pip" install -q --no-deps megadetector==10.0.28
"$pip" install -q "setuptools<81" pytest tensorboard jsonpickle humanfriendly fastquadtree send2trash dill seaborn thop fire scipy python-dateutil
