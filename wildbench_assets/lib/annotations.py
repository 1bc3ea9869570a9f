"""One box, four notations — the only place box coordinates are converted.

- MegaDetector batch output (format 1.6): [x_min, y_min, width, height], normalised to [0, 1].
- YOLO txt: `class cx cy w h`, normalised.
- Pascal VOC xml: absolute pixel corners xmin, ymin, xmax, ymax (thesis 3.1.5).
- COCO json: [x, y, width, height] in absolute pixels.
A `Box` holds normalised corners; everything converts through it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass


@dataclass(frozen=True)
class Box:
    x1: float  # normalised corners, 0..1
    y1: float
    x2: float
    y2: float

    # MegaDetector [x_min, y_min, w, h], normalised
    @classmethod
    def from_md(cls, bbox: list[float]) -> Box:
        x, y, w, h = bbox
        return cls(x, y, x + w, y + h)

    def to_md(self, digits: int = 4) -> list[float]:
        return [round(self.x1, digits), round(self.y1, digits), round(self.width, digits), round(self.height, digits)]

    # YOLO cx cy w h, normalised
    @classmethod
    def from_yolo(cls, cx: float, cy: float, w: float, h: float) -> Box:
        return cls(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)

    def to_yolo(self) -> tuple[float, float, float, float]:
        return ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2, self.width, self.height)

    # Pascal VOC absolute corners
    @classmethod
    def from_voc(cls, xmin: float, ymin: float, xmax: float, ymax: float, width: int, height: int) -> Box:
        return cls(xmin / width, ymin / height, xmax / width, ymax / height)

    def to_voc(self, width: int, height: int) -> tuple[int, int, int, int]:
        return (round(self.x1 * width), round(self.y1 * height), round(self.x2 * width), round(self.y2 * height))

    # COCO absolute [x, y, w, h]
    @classmethod
    def from_coco(cls, bbox: list[float], width: int, height: int) -> Box:
        x, y, w, h = bbox
        return cls(x / width, y / height, (x + w) / width, (y + h) / height)

    def to_coco(self, width: int, height: int, digits: int = 2) -> list[float]:
        return [round(self.x1 * width, digits), round(self.y1 * height, digits),
                round(self.width * width, digits), round(self.height * height, digits)]

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    def clipped(self) -> Box:
        def clip(v: float) -> float:
            return min(1.0, max(0.0, v))

        return Box(clip(self.x1), clip(self.y1), clip(self.x2), clip(self.y2))

    def is_valid(self, tolerance: float = 1e-6) -> bool:
        """Inside the image and of positive size."""
        return (-tolerance <= self.x1 < self.x2 <= 1 + tolerance) and (-tolerance <= self.y1 < self.y2 <= 1 + tolerance)


def yolo_line(class_index: int, box: Box, digits: int = 6) -> str:
    return " ".join([str(class_index), *(f"{v:.{digits}f}" for v in box.to_yolo())])


def parse_yolo_line(line: str) -> tuple[int, Box]:
    parts = line.split()
    if len(parts) != 5:
        raise ValueError(f"YOLO line needs 5 fields, got {len(parts)}: {line!r}")
    return int(parts[0]), Box.from_yolo(*map(float, parts[1:]))


def voc_xml(filename: str, width: int, height: int, objects: list[tuple[str, Box]]) -> str:
    """Pascal VOC annotation (the thesis's fields plus size, which VOC readers need)."""
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = filename
    size = ET.SubElement(root, "size")
    for tag, value in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    for name, box in objects:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = name
        for tag in ("pose", "truncated", "difficult", "occluded"):
            ET.SubElement(obj, tag).text = "Unspecified" if tag == "pose" else "0"
        corners = box.to_voc(width, height)
        bndbox = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), corners):
            ET.SubElement(bndbox, tag).text = str(value)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


def parse_voc_xml(text: str) -> tuple[int, int, list[tuple[str, Box]]]:
    root = ET.fromstring(text)
    width, height = int(root.findtext("size/width")), int(root.findtext("size/height"))
    objects = []
    for obj in root.iter("object"):
        b = obj.find("bndbox")
        corners = [float(b.findtext(tag)) for tag in ("xmin", "ymin", "xmax", "ymax")]
        objects.append((obj.findtext("name"), Box.from_voc(*corners, width, height)))
    return width, height, objects
