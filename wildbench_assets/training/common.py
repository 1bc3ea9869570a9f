"""What every trainer shares: settings, presets, predictions in one shape."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 20          # thesis defaults: 20 epochs, 640 px, batch 16
    imgsz: int = 640
    batch: int = 16
    device: str = "auto"
    max_train_images: int | None = None
    pretrained: str | None = None   # a local weights file; nothing is downloaded
    freeze: int = 20                # megadetector: layers frozen when fine-tuning (thesis: 20)
    architecture: str = "full"      # fasterrcnn: "full" = resnet50_fpn_v2 (thesis); "tiny" = mobilenet_v3 320

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> TrainSettings:
        """The one way run config (`config.TrainConfig`) becomes settings: the preset, with every override
        that is given (not None). An override that is not a setting is an error, never silently dropped."""
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"not training settings: {sorted(unknown)}")
        return replace(PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None})


PRESETS = {
    "thesis": TrainSettings(),
    # about a minute on a 2-core CPU for all three models together: the demo and the tests
    "tiny": TrainSettings(epochs=1, imgsz=128, batch=8, max_train_images=24, architecture="tiny"),
}


@dataclass(frozen=True)
class Prediction:
    class_index: int
    confidence: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels of the original image


def pick_device(requested: str = "auto") -> str:
    """The one device picker: `auto` is the first GPU when there is one (CUDA, else Apple's MPS), else
    the CPU; anything else is used as given (`cpu`, `cuda:1`)."""
    import torch

    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda:0"
    return "mps" if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else "cpu"
