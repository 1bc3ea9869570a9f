import random

import pytest

from wildbench_assets.lib.annotations import Box, parse_voc_xml, parse_yolo_line, voc_xml, yolo_line


def test_thesis_example_yolo_to_voc():
    """Thesis 3.1.5 / Figure 3.8: `18 0.66395 0.41476 0.5531 0.6925` on the 1920x1080 sheep photo
    (the thesis printed class 18, but ovar is index 19 of its own list) <-> VOC xmin 744, ymin 74,
    xmax ~1805, ymax ~822 (the thesis wrote 1804/820: it rounded its own numbers differently)."""
    _, box = parse_yolo_line("19 0.66395 0.41476 0.5531 0.6925")
    xmin, ymin, xmax, ymax = box.to_voc(1920, 1080)
    assert (xmin, ymin) == (744, 74)
    assert xmax == pytest.approx(1805, abs=1) and ymax == pytest.approx(822, abs=1)
    back = Box.from_voc(xmin, ymin, xmax, ymax, 1920, 1080).to_yolo()
    assert back == pytest.approx((0.66395, 0.41476, 0.5531, 0.6925), abs=1e-3)


def test_megadetector_box_converts_like_the_thesis_get_bbox():
    md = [0.3874, 0.06851, 0.5531, 0.6925]  # [x_min, y_min, w, h]
    cx, cy, w, h = Box.from_md(md).to_yolo()
    assert (cx, cy, w, h) == pytest.approx((md[0] + md[2] / 2, md[1] + md[3] / 2, md[2], md[3]))


@pytest.mark.parametrize("seed", range(20))
def test_all_notations_round_trip(seed):
    rng = random.Random(seed)
    width, height = rng.choice([(1920, 1080), (640, 480), (2048, 1536)])
    x1, y1 = rng.uniform(0, 0.8), rng.uniform(0, 0.8)
    box = Box(x1, y1, rng.uniform(x1 + 0.01, 1), rng.uniform(y1 + 0.01, 1))
    for a, b in zip(Box.from_md(box.to_md(digits=8)).__dict__.values(), box.__dict__.values()):
        assert a == pytest.approx(b, abs=1e-7)
    _, from_yolo = parse_yolo_line(yolo_line(3, box, digits=8))
    assert from_yolo.to_yolo() == pytest.approx(box.to_yolo(), abs=1e-7)
    coco = Box.from_coco(box.to_coco(width, height, digits=4), width, height)
    assert coco.to_yolo() == pytest.approx(box.to_yolo(), abs=1e-6)
    w, h, objects = parse_voc_xml(voc_xml("x.jpg", width, height, [("sus", box)]))
    assert (w, h, objects[0][0]) == (width, height, "sus")
    voc = objects[0][1]  # VOC is integer pixels: within one pixel
    assert abs(voc.x1 - box.x1) * width <= 0.5 + 1e-9 and abs(voc.y2 - box.y2) * height <= 0.5 + 1e-9


def test_validity_and_clipping():
    assert Box(0.1, 0.1, 0.5, 0.5).is_valid()
    assert not Box(0.5, 0.1, 0.4, 0.5).is_valid()
    assert not Box(-0.2, 0.1, 0.4, 0.5).is_valid()
    assert Box(-0.2, 0.1, 1.3, 0.5).clipped() == Box(0.0, 0.1, 1.0, 0.5)
    with pytest.raises(ValueError):
        parse_yolo_line("1 0.5 0.5")


def test_formats_disagreement_sees_every_corner_and_missing_boxes():
    from wildbench_assets.lib.annotations import Box
    from wildbench_assets.lib.datasets import formats_disagreement

    box = Box(0.1, 0.2, 0.5, 0.6)
    assert formats_disagreement([box], [box], [box], 1, 100, 100) == 0
    for moved in (Box(0.1, 0.2, 0.5, 0.7), Box(0.1, 0.3, 0.5, 0.6), Box(0.2, 0.2, 0.5, 0.6), Box(0.1, 0.2, 0.6, 0.6)):
        assert formats_disagreement([box], [moved], [box], 1, 100, 100) == 1  # any of the four corners
    assert formats_disagreement([box, box], [box], [box, box], 2, 100, 100) == 1  # a box missing in COCO
    assert formats_disagreement([box], [box], [box], 2, 100, 100) == 1  # fewer boxes than labelled
