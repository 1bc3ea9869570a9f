"""A small, realistic synthetic camera-trap archive, so every stage has something real to chew on.

Two parks with several cameras each; imbalanced species; bursts of 3-5 frames one second apart; empty
triggers; night (IR, greyscale) frames; EXIF DateTimeOriginal/Make/Model written the ways real cameras
write them; a few corrupt, truncated, zero-byte, EXIF-less, clock-reset and non-image files; an unknown
species folder; and a COCO Camera Traps manifest with ground-truth boxes for every animal.
Animals are drawn as species-coloured bodies of species-typical size, so a detector can learn them.
"""

from __future__ import annotations

import colorsys
import io
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from PIL import Image, ImageDraw, ImageFilter

from wildbench_assets.lib.image_header import TAG_DATETIME, TAG_DATETIME_ORIGINAL, TAG_EXIF_IFD, TAG_MAKE, TAG_MODEL
from wildbench_assets.lib.inventory import MANIFEST_NAME
from wildbench_assets.taxonomy import EMPTY as EMPTY_SPECIES

# park -> camera -> (make, model, date style); date styles are how real cameras have written the tag.
CAMERAS: dict[str, dict[str, tuple[str, str, str]]] = {
    "snieves": {
        "C01": ("RECONYX", "HC500 HYPERFIRE  ", "colon"),
        "C02": ("RECONYX", "HC600 HYPERFIRE", "colon"),
        "C03": ("Bushnell", "", "dash"),
        "C04": ("RECONYX", "UltraFire", "nul"),
        "C05": ("Browning", "BTC-8E", "colon"),
        "C06": ("RECONYX", "HC600 HYPERFIRE", "nul"),
    },
    "donana": {
        "D01": ("Bushnell", "119837", "colon"),
        "D02": ("RECONYX", "HC550 HYPERFIRE", "nul"),
        "D03": ("Browning", "BTC-8E", "dash"),
        "D04": ("RECONYX", "HC500 HYPERFIRE  ", "colon"),
        "D05": ("Bushnell", "119837", "dash"),
        "D06": ("RECONYX", "UltraFire", "colon"),
    },
}
# Imbalanced on purpose, as real archives are (thesis Figure 3.3).
SPECIES_WEIGHTS: dict[str, dict[str, int]] = {
    "snieves": {"sus": 30, "capi": 14, "ovar": 10, "vul": 8, "mel": 6, "caca": 4, "gen": 3, "mafo": 2, "lep": 2},
    "donana": {"sus": 24, "cer": 14, "dam": 12, "lyn": 8, "ory": 6, "her": 4, "vul": 4, "bos": 3, "equ": 2},
}
# Relative body length (share of image width) of each species.
BODY_SIZE = {"bos": 0.45, "equ": 0.45, "cer": 0.38, "dam": 0.32, "sus": 0.3, "capi": 0.3, "ovar": 0.28,
             "caca": 0.26, "lyn": 0.24, "vul": 0.2, "mel": 0.2, "her": 0.16, "gen": 0.15, "mafo": 0.14,
             "lep": 0.14, "ory": 0.12}
EMPTY_SHARE = 0.25
NIGHT_SHARE = 0.3


@dataclass(frozen=True)
class DemoObject:
    key: str
    data: bytes
    arrival_offset_days: int = 0  # 0: arrived today; 1: yesterday (local archives set the file's mtime)


def species_colour(code: str) -> tuple[int, int, int]:
    hue = (sum(ord(c) * 31 ** i for i, c in enumerate(code)) % 360) / 360
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.85)
    return int(r * 255), int(g * 255), int(b * 255)


def format_exif_date(when: datetime, style: str) -> str:
    text = when.strftime("%Y-%m-%d %H:%M:%S" if style == "dash" else "%Y:%m:%d %H:%M:%S")
    return text + "\x00" * 4 if style == "nul" else text


def exif_bytes(when: datetime | None, make: str, model: str, style: str) -> bytes:
    exif = Image.Exif()
    exif[TAG_MAKE] = make
    exif[TAG_MODEL] = model
    if when is not None:
        exif[TAG_DATETIME] = format_exif_date(when, style)
        exif.get_ifd(TAG_EXIF_IFD)[TAG_DATETIME_ORIGINAL] = format_exif_date(when, style)
    return exif.tobytes()


def background(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A camera's scene: sky-to-ground gradient with blurred vegetation blobs."""
    width, height = size
    ground = (rng.randint(70, 120), rng.randint(80, 130), rng.randint(40, 80))
    sky = (rng.randint(150, 200), rng.randint(170, 210), rng.randint(180, 230))
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    horizon = int(height * rng.uniform(0.25, 0.45))
    for y in range(height):
        t = min(1.0, y / max(1, horizon)) if y < horizon else 1.0
        colour = tuple(int(sky[i] * (1 - t) + ground[i] * t) for i in range(3))
        draw.line([(0, y), (width, y)], fill=colour)
    for _ in range(18):
        x, y, r = rng.randint(0, width), rng.randint(horizon, height), rng.randint(width // 30, width // 8)
        shade = tuple(max(0, c + rng.randint(-40, 20)) for c in ground)
        draw.ellipse([x - r, y - r // 2, x + r, y + r // 2], fill=shade)
    return image.filter(ImageFilter.GaussianBlur(radius=max(1, width // 200)))


def draw_animal(image: Image.Image, rng: random.Random, species: str, centre: tuple[float, float],
                facing: int) -> tuple[float, float, float, float]:
    """Draw one animal; return its box (x, y, w, h) in pixels, clipped to the image."""
    width, height = image.size
    body_w = width * BODY_SIZE.get(species, 0.2) * rng.uniform(0.85, 1.15)
    body_h = body_w * 0.5
    cx, cy = centre
    colour = species_colour(species)
    draw = ImageDraw.Draw(image)
    x0, y0 = cx - body_w / 2, cy - body_h / 2
    legs = body_h * 0.6
    for lx in (0.2, 0.35, 0.65, 0.8):
        x = x0 + body_w * lx
        draw.line([(x, cy), (x, cy + body_h / 2 + legs)], fill=colour, width=max(1, int(body_w / 25)))
    draw.ellipse([x0, y0, x0 + body_w, y0 + body_h], fill=colour)
    head_r = body_h * 0.38
    hx = cx + facing * (body_w / 2 + head_r * 0.4)
    hy = y0 + head_r * 0.5
    draw.ellipse([hx - head_r, hy - head_r, hx + head_r, hy + head_r], fill=colour)
    left, right = min(x0, hx - head_r), max(x0 + body_w, hx + head_r)
    top, bottom = min(y0, hy - head_r), cy + body_h / 2 + legs
    left, top = max(0.0, left), max(0.0, top)
    right, bottom = min(float(width), right), min(float(height), bottom)
    return (round(left, 1), round(top, 1), round(right - left, 1), round(bottom - top, 1))


def encode_jpeg(image: Image.Image, exif: bytes | None, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, **({"exif": exif} if exif else {}))
    return buffer.getvalue()


def generate_demo_archive(
    events_per_camera: int = 8, size: tuple[int, int] = (320, 240), seed: int = 7,
    start: datetime = datetime(2024, 3, 1),
) -> Iterator[DemoObject]:
    """Yield every object of the archive, the manifest last. Deterministic for a given seed."""
    rng = random.Random(seed)
    categories = sorted({s for weights in SPECIES_WEIGHTS.values() for s in weights})
    category_ids = {code: i + 1 for i, code in enumerate(categories)}
    images: list[dict] = []
    annotations: list[dict] = []
    for park, cameras in CAMERAS.items():
        species_codes, weights = zip(*SPECIES_WEIGHTS[park].items())
        for camera, (make, model, style) in cameras.items():
            scene = background(random.Random(f"{seed}-{park}-{camera}"), size)
            when = start + timedelta(hours=rng.randint(0, 48))
            for event in range(events_per_camera):
                when += timedelta(hours=rng.uniform(2, 60))
                species = EMPTY_SPECIES if rng.random() < EMPTY_SHARE else rng.choices(species_codes, weights)[0]
                frames = rng.randint(3, 5) if species != EMPTY_SPECIES else rng.randint(1, 3)
                count = 2 if species != EMPTY_SPECIES and rng.random() < 0.15 else 1
                night = not 7 <= when.hour < 20 or rng.random() < NIGHT_SHARE / 3
                animals = [(rng.uniform(0.25, 0.75) * size[0], rng.uniform(0.5, 0.8) * size[1], rng.choice((-1, 1)))
                           for _ in range(count)]
                seq_id = f"{park}-{camera}-{event:04d}"
                arrival = 1 if event < events_per_camera * 0.6 else 0  # older events landed yesterday
                for frame in range(frames):
                    taken = when + timedelta(seconds=frame)
                    image = scene.copy()
                    boxes = []
                    for i, (x, y, facing) in enumerate(animals):
                        x += facing * frame * size[0] * 0.03
                        animals[i] = (x, y, facing)
                        if species != EMPTY_SPECIES:
                            boxes.append(draw_animal(image, rng, species, (x, y), facing))
                    if night:
                        image = image.convert("L").convert("RGB")
                    name = f"{camera}_{taken:%Y%m%d_%H%M%S}.jpg"
                    key = f"{park}/{species}/{camera}/{name}"
                    data = encode_jpeg(image, exif_bytes(taken, make, model, style))
                    yield DemoObject(key, data, arrival)
                    image_id = key.removesuffix(".jpg")
                    images.append({"id": image_id, "file_name": key, "location": camera, "seq_id": seq_id,
                                   "seq_num_frames": frames, "frame_num": frame,
                                   "datetime": taken.strftime("%Y-%m-%d %H:%M:%S"),
                                   "width": size[0], "height": size[1]})
                    for box in boxes:
                        annotations.append({"id": f"{image_id}-{len(annotations)}", "image_id": image_id,
                                            "category_id": category_ids[species], "bbox": list(box)})
                    if species == EMPTY_SPECIES:
                        annotations.append({"id": f"{image_id}-{len(annotations)}", "image_id": image_id,
                                            "category_id": 0})
    yield from bad_inputs(size, start)
    manifest = {
        "info": {"version": "1.0", "description": "WildBench demo archive (synthetic)", "year": start.year},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 0, "name": "empty"}] + [{"id": i, "name": c} for c, i in category_ids.items()],
    }
    yield DemoObject(MANIFEST_NAME, json.dumps(manifest, indent=1).encode())


def bad_inputs(size: tuple[int, int], start: datetime) -> Iterator[DemoObject]:
    """The faults real archives hold, each once or twice, so every integrity status is exercised."""
    plain = Image.new("RGB", size, (90, 110, 70))
    good = encode_jpeg(plain, exif_bytes(start, "RECONYX", "HC500 HYPERFIRE", "colon"))
    yield DemoObject("snieves/sus/C01/broken_corrupt.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8 + b"\xff\xd9")
    yield DemoObject("donana/cer/D01/broken_truncated.jpg", good[: len(good) * 2 // 3])
    yield DemoObject("snieves/vul/C02/broken_empty.jpg", b"")
    yield DemoObject("donana/dam/D02/notes.jpg", b"camera D02 serviced, batteries replaced\n")
    yield DemoObject("snieves/capi/C03/no_exif.jpg", encode_jpeg(plain, None))
    yield DemoObject("donana/sus/D03/clock_reset.jpg",
                     encode_jpeg(plain, exif_bytes(datetime(1970, 1, 1, 0, 3, 12), "Browning", "BTC-8E", "colon")))
    for i in range(2):  # a species code that is not in Table 3.1
        yield DemoObject(f"snieves/xyz/C04/unknown_{i}.jpg",
                         encode_jpeg(plain, exif_bytes(start + timedelta(days=3, seconds=i), "RECONYX", "UltraFire",
                                                       "colon")))
