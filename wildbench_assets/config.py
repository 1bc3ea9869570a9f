"""dg.Config classes shared by assets and sensors."""

from typing import Literal

import dagster as dg
from pydantic import Field

from wildbench_assets.lib.splits import SplitPlan
from wildbench_assets.training.common import TrainSettings
from wildbench_assets.training.registry import PREDICTOR_CHOICES, PROMOTION_MIN_MAP_50


class ImageMetadataConfig(dg.Config):
    max_failed_share: float = Field(
        default=0.05, ge=0, le=1,
        description="Warn when more than this share of a partition's objects is corrupt/truncated/empty/not an image",
    )
    max_workers: int = Field(default=16, ge=1, description="Parallel header reads")
    header_block_bytes: int = Field(default=16 * 1024, ge=1024, description="Ranged-read size for image headers")


class CurationConfig(dg.Config):
    burst_interval_s: float = Field(default=1.0, ge=0, description="Drop frames this close to the last kept one")
    mode: Literal["camera", "thesis"] = Field(
        default="camera",
        description="camera: bursts per camera and species (default); thesis: per species across cameras, "
                    "species below the median count exempt, as the thesis did",
    )


class SplitConfig(dg.Config):
    """The launchpad's face of `lib.splits.SplitPlan`: the same fields, their defaults taken from it."""

    by: Literal["camera", "sequence", "image"] = Field(
        default=SplitPlan.by, description="Leakage group: camera | sequence | image (thesis: image)")
    sequence_gap_s: float = Field(default=SplitPlan.sequence_gap_s, gt=0,
                                  description="by=sequence: a new sequence after this gap")
    seed: int = Field(default=SplitPlan.seed,
                      description="Keyed-hash seed of the assignment and of the balancing order")
    test_share: float = Field(default=SplitPlan.test_share, gt=0, lt=1)
    val_share: float = Field(default=SplitPlan.val_share, ge=0, lt=1, description="Share of train+val that goes to val")
    cap: int | None = Field(default=SplitPlan.cap, ge=0,
                            description="Images per species per split; default: thesis rule")
    cap_round_to: int = Field(default=SplitPlan.cap_round_to, ge=1,
                              description="Default cap: mean per species rounded up to this")
    empty_share: float = Field(default=SplitPlan.empty_share, ge=0, lt=1,
                               description="Share of each split that is empty images")
    seen_share: float = Field(default=SplitPlan.seen_share, ge=0, lt=1,
                              description="Share of train/val sequences held out as test_seen (training cameras, "
                                          "no shared burst)")
    share_tolerance: float = Field(default=0.05, ge=0, le=1, description="Warn when a split's share is further off")

    def plan(self) -> SplitPlan:
        return SplitPlan(**self.model_dump(include=set(SplitPlan.__dataclass_fields__)))


class LabelConfig(dg.Config):
    label_threshold: float = Field(default=0.2, ge=0, le=1,
                                   description="Animal detections at or above this become labels "
                                               "(every one, not just the top)")
    max_unlabelled_share: float = Field(default=0.25, ge=0, le=1,
                                        description="Warn when more animal images than this get no box")
    max_failed_share: float = Field(default=0.02, ge=0, le=1, description="Warn when more images than this fail")


class ExportRequest(dg.Config):
    """A custom dataset request from the launchpad. Leave every field unset to re-run the request's
    stored spec (or the `<id>.json` in the requests inbox)."""

    parks: list[str] | None = Field(default=None, description="Park codes; empty: all")
    species: list[str] | None = Field(default=None, description="Species codes; empty: all")
    start_date: str | None = Field(default=None, description="First capture date, YYYY-MM-DD")
    end_date: str | None = Field(default=None, description="Last capture date, YYYY-MM-DD")
    offset: int | None = Field(default=None, description="Skip this many matching images (time order)")
    limit: int | None = Field(default=None, description="At most this many images")
    include_empties: bool | None = Field(default=None, description="Include empty images")
    formats: list[str] | None = Field(default=None, description="Label formats: yolo, voc, coco")
    label_threshold: float = Field(default=0.2, ge=0, le=1)


class ReleaseConfig(dg.Config):
    max_distance: int = Field(default=2, ge=0, le=16,
                              description="Leak audit: images whose 64-bit perceptual hashes differ in at most this "
                                          "many bits are near-duplicates")
    profile: Literal["default", "thesis"] = Field(
        default="default",
        description="default: the benchmark's splits and labels | thesis: the thesis's construction exactly "
                    "(bursts per species over both parks with one median exemption, a random image split, one "
                    "box per image), cut beside a default release to measure the thesis protocol's optimism; "
                    "its leak audit reports but does not block. Read at the cut only (then frozen)")
    licence: str = Field(
        default="",
        description="The terms under which the archive's owner lets these images and labels be used, written "
                    "into every download's LICENSE (empty: $WILDBENCH_DATA_LICENCE, else LICENSE says the terms were "
                    "not stated and to ask the operator). Read at the cut only (then frozen)")


class TrainConfig(dg.Config):
    preset: Literal["tiny", "thesis"] = Field(
        default="tiny",
        description="tiny (about a minute on CPU) | thesis (20 epochs, 640 px, batch 16, the thesis's architectures)")
    epochs: int | None = Field(default=None, ge=1, description="Override the preset")
    imgsz: int | None = Field(default=None, ge=32)
    batch: int | None = Field(default=None, ge=1)
    device: str = Field(default="auto", description="auto (GPU when present) | cpu | cuda:N")
    max_train_images: int | None = Field(default=None, ge=1)
    pretrained: str | None = Field(default=None, description="Local weights file to start from (yolov8s.pt ...)")

    def settings(self) -> TrainSettings:
        """The trainers' settings: the preset with the fields given here (each named like the setting it
        overrides, in `training.common.TrainSettings`, the settings' one home)."""
        return TrainSettings.from_preset(self.preset, **self.model_dump(exclude={"preset"}))


class EvaluationConfig(dg.Config):
    image_threshold: float = Field(default=0.2, ge=0, le=1,
                                   description="Image level: most confident detection at or above this, else empty")


class PredictionConfig(dg.Config):
    model: Literal[PREDICTOR_CHOICES] = Field(  # type: ignore[valid-type]  # auto, detector, every registered model
        default="auto", description="auto: the best promotable model (by mAP@[.5:.95]) of the most recently "
                                    "cut release that has one, else the detector alone (species 'animal'); "
                                    "a model name: that model on the most recent release it was trained on")
    min_confidence: float = Field(default=0.1, ge=0, le=1, description="Detections below this are not reported")
    min_map_50: float = Field(default=PROMOTION_MIN_MAP_50, ge=0, le=1,
                              description="auto: a trained model is promoted only with at least this mAP@.5")
