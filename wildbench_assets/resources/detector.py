"""The detector: one interface, real backends.

- `mdlite`: MegadetectorLite, the one-class YOLOX-tiny camera-trap detector shipped in the `zamba`
  wheel (`yolox_tiny_640_20220528.pth`, MIT), run through `models.yolox` — the offline default.
- `manifest`: the boxes that came with the archive (COCO Camera Traps manifest), confidence 1.
Images are decoded in a thread pool that runs ahead of inference (prefetch), batched, and run on the
GPU when there is one. A failed image is a result with its reason, never an exception.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import dagster as dg
from PIL import Image, ImageOps
from pydantic import Field

from wildbench_assets.lib.annotations import Box
from wildbench_assets.lib.image_decode import decode_image
from wildbench_assets.resources.loaded_models import LOADED, weights_sha256
from wildbench_assets.training.common import pick_device

ANIMAL, PERSON, VEHICLE = "1", "2", "3"
MD_CATEGORIES = {ANIMAL: "animal", PERSON: "person", VEHICLE: "vehicle"}
BACKENDS = ("mdlite", "megadetector", "manifest")


@dataclass(frozen=True)
class Detection:
    category: str  # MegaDetector category id: "1" animal, "2" person, "3" vehicle
    confidence: float
    box: Box

    def to_md(self) -> dict:
        return {"category": self.category, "conf": round(self.confidence, 4), "bbox": self.box.to_md()}


@dataclass(frozen=True)
class ImageDetections:
    key: str
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    detections: tuple[Detection, ...] = field(default_factory=tuple)
    failure: str | None = None


def mdlite_weights() -> Path:
    """The MegadetectorLite checkpoint inside the installed `zamba` wheel (installed without its deps)."""
    spec = importlib.util.find_spec("zamba")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the zamba wheel is not installed: `pip install --no-deps zamba` (make install does)")
    path = Path(spec.submodule_search_locations[0], "object_detection", "yolox", "assets",
                "yolox_tiny_640_20220528.pth")
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the zamba wheel")
    return path


class MDLiteModel:
    """YOLOX-tiny at 640 px, letterboxed top-left as zamba does, scores = objectness x class."""

    input_size = 640

    def __init__(self, weights: Path, device: str, inference_threshold: float, nms_threshold: float = 0.45):
        import torch

        from wildbench_assets.models.yolox import YOLOX

        checkpoint = torch.load(weights, map_location="cpu", weights_only=False)
        model = YOLOX(num_classes=1, depth=0.33, width=0.375)
        model.load_state_dict(checkpoint["model"] if "model" in checkpoint else checkpoint, strict=True)
        self.model = model.eval().to(device)
        self.device = device
        self.threshold = inference_threshold
        self.nms_threshold = nms_threshold

    def preprocess(self, image: Image.Image):
        import numpy as np

        padded = ImageOps.pad(image, (self.input_size, self.input_size), method=Image.BICUBIC, centering=(0, 0))
        return np.ascontiguousarray(np.asarray(padded, dtype=np.float32).transpose(2, 0, 1))

    def predict(self, arrays: list, sizes: list[tuple[int, int]]) -> list[tuple[Detection, ...]]:
        import numpy as np
        import torch

        from wildbench_assets.models.yolox import postprocess

        with torch.inference_mode():
            batch = torch.from_numpy(np.stack(arrays)).to(self.device)
            outputs = postprocess(self.model(batch), self.threshold, self.nms_threshold)
        results = []
        for out, (width, height) in zip(outputs, sizes):
            ratio = min(self.input_size / width, self.input_size / height)
            found = []
            for x1, y1, x2, y2, score, _cls in out.cpu().tolist():
                box = Box(x1 / ratio / width, y1 / ratio / height, x2 / ratio / width, y2 / ratio / height).clipped()
                if box.is_valid():
                    found.append(Detection(ANIMAL, float(score), box))
            results.append(tuple(sorted(found, key=lambda d: -d.confidence)))
        return results


class MegaDetectorModel:
    """MegaDetector through the `megadetector` package's own loading and batched inference.

    `weights`: a local file — MDv5a (YOLOv5 format, needs `ultralytics-yolov5`) or an ultralytics-format
    checkpoint (`model_type="ultralytics"`). Give it a neutral file name: megadetector guesses the model
    type from substrings of the name (`v3`, `mdv5`, ...). Nothing is downloaded: the path must exist.
    """

    def __init__(self, weights: Path, device: str, inference_threshold: float, model_type: str | None = None,
                 image_size: int | None = None):
        from megadetector.detection.run_detector import load_detector

        options = {"model_type": model_type} if model_type else None
        self.detector = load_detector(str(weights), force_cpu=device == "cpu", detector_options=options)
        self.device = device
        self.threshold = inference_threshold
        self.image_size = image_size

    def preprocess(self, image: Image.Image) -> Image.Image:
        return image  # megadetector letterboxes itself

    def predict(self, images: list, sizes: list[tuple[int, int]]) -> list[tuple[Detection, ...]]:
        outputs = self.detector.generate_detections_one_batch(
            images, image_id=[f"image_{i}" for i in range(len(images))], detection_threshold=self.threshold,
            image_size=self.image_size)
        results = []
        for out in outputs:
            if out.get("failure"):
                raise RuntimeError(out["failure"])
            found = [Detection(str(d["category"]), float(d["conf"]), Box.from_md(d["bbox"]).clipped())
                     for d in out.get("detections") or []]
            results.append(tuple(sorted((d for d in found if d.box.is_valid()), key=lambda d: -d.confidence)))
        return results


class Detector:
    """Runs one backend over many images: decode ahead in threads, infer in batches."""

    def __init__(self, backend: str, identity: str, model: MDLiteModel | MegaDetectorModel | None = None,
                 manifest_boxes: dict[str, tuple] | None = None, batch_size: int = 8, decode_workers: int = 4):
        self.backend = backend
        self.identity = identity  # what a cached result is valid for: backend, weights, thresholds
        self.model = model
        self.manifest_boxes = manifest_boxes or {}
        self.batch_size = batch_size
        self.decode_workers = decode_workers
        self.inferences = 0

    def _decode(self, key: str, read: Callable[[str], bytes]):
        try:
            data = read(key)
            sha = hashlib.sha256(data).hexdigest()
            image = decode_image(data)  # every pixel, strictly: a cut scan is a failure, not a grey half
            array = self.model.preprocess(image) if self.model else None
            return key, sha, image.size, array, None
        except Exception as err:  # noqa: BLE001 - a bad image is a row with its reason
            return key, None, None, None, f"image decode failure: {type(err).__name__}: {err}"

    def run(self, keys: Iterable[str], read: Callable[[str], bytes],
            known: Mapping[str, tuple[Detection, ...]] | None = None) -> Iterator[ImageDetections]:
        """Detections for every key. `known`: content sha256 -> detections already computed (cache);
        those images are decoded and hashed but not inferred on."""
        known = {} if known is None else known  # not `or`: a lazy mapping would be read to test its truth
        prefetch = self.batch_size * 2  # bounded: decoded images waiting for the model stay few
        with ThreadPoolExecutor(self.decode_workers) as pool:
            queue: deque = deque()
            pending: list = []
            for key in keys:
                queue.append(pool.submit(self._decode, key, read))
                while len(queue) > prefetch:
                    yield from self._take(queue.popleft().result(), pending, known)
            while queue:
                yield from self._take(queue.popleft().result(), pending, known)
            if pending:
                yield from self._infer(pending)
                pending.clear()

    def _take(self, item, pending: list, known: Mapping) -> list[ImageDetections]:
        key, sha, size, _array, failure = item
        if failure is not None:
            return [ImageDetections(key, failure=failure)]
        if self.model is None:
            return [ImageDetections(key, sha, *size, detections=self.manifest_boxes.get(key, ()))]
        if sha in known:
            return [ImageDetections(key, sha, *size, detections=known[sha])]
        pending.append(item)
        if len(pending) < self.batch_size:
            return []
        batch = list(pending)
        pending.clear()
        return self._infer(batch)

    def _infer(self, items: list) -> list[ImageDetections]:
        try:
            found = self.model.predict([a for *_, a, _f in items], [size for _k, _s, size, _a, _f in items])
        except Exception as err:  # noqa: BLE001 - the batch's images are recorded as failed, the run goes on
            return [ImageDetections(k, s, *size, failure=f"inference failure: {err}") for k, s, size, _a, _f in items]
        self.inferences += len(items)
        return [ImageDetections(k, s, *size, detections=d) for (k, s, size, _a, _f), d in zip(items, found)]


class DetectorResource(dg.ConfigurableResource):
    """The box labeller. `mdlite` (default, offline) or `manifest` (the archive's own boxes)."""

    backend: Literal["mdlite", "megadetector", "manifest"] = Field(default="mdlite", description="box labeller")
    weights_path: str | None = Field(default=None, description="Checkpoint; mdlite default: zamba's")
    device: str = Field(default="auto", description="auto | cpu | cuda | cuda:N | mps")
    batch_size: int | None = Field(default=None, ge=1, description="default: 16 on a GPU, 1 on a CPU")
    decode_workers: int | None = Field(default=None, ge=1, description="default: 4 on a GPU, 1 on a CPU")
    inference_threshold: float = Field(default=0.05, ge=0, le=1,
                                       description="Detections below this are not kept at all")
    model_type: str | None = Field(default=None, description="megadetector: e.g. 'ultralytics' for a YOLOv8/11 "
                                                             "checkpoint; default: megadetector's own guess")
    image_size: int | None = Field(default=None, description="megadetector: inference size (long side)")

    def _parallelism(self, device: str) -> tuple[int, int]:
        # On a CPU the model already uses every core: batching and decode threads only compete with it
        # (measured in bench/bench_labels.py). On a GPU they keep the device fed.
        gpu = device.startswith("cuda")
        return self.batch_size or (16 if gpu else 1), self.decode_workers or (4 if gpu else 1)

    def load(self, manifest_boxes: dict[str, tuple] | None = None) -> Detector:
        if self.backend == "manifest":
            return Detector("manifest", "manifest", manifest_boxes=manifest_boxes,
                            batch_size=self.batch_size or 16, decode_workers=self.decode_workers or 4)
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown detector backend {self.backend!r}; expected one of {BACKENDS}")
        if self.backend == "megadetector" and not self.weights_path:
            raise FileNotFoundError("the megadetector backend needs weights_path (WILDBENCH_DETECTOR_WEIGHTS): "
                                    "download MDv5a once and point at it; nothing is downloaded at run time")
        weights = Path(self.weights_path) if self.weights_path else mdlite_weights()
        if not weights.is_file():
            raise FileNotFoundError(f"detector weights {weights} not found (weights are a local file; "
                                    "nothing is downloaded at run time)")
        digest = weights_sha256(weights)[:16]
        identity = json.dumps({"backend": self.backend, "weights": digest, "min_conf": self.inference_threshold,
                               "image_size": self.image_size})
        device = pick_device(self.device)
        if self.backend == "mdlite":
            model = LOADED.get("mdlite", weights, lambda: MDLiteModel(weights, device, self.inference_threshold),
                               device, self.inference_threshold)
        else:
            model = LOADED.get("megadetector", weights, lambda: MegaDetectorModel(
                weights, device, self.inference_threshold, self.model_type, self.image_size),
                device, self.inference_threshold, self.model_type, self.image_size)
        batch_size, decode_workers = self._parallelism(device)
        return Detector(self.backend, identity, model=model, batch_size=batch_size, decode_workers=decode_workers)
