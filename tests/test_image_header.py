import io
from datetime import datetime

import pytest
from PIL import Image

from wildbench_assets.lib import image_header as hdr
from wildbench_assets.lib.demo_archive import encode_jpeg, exif_bytes
from wildbench_assets.lib.headers import inspect_object
from wildbench_assets.lib.ranged import RangedFile
from wildbench_assets.resources.archive import LocalArchive

NOW = datetime(2026, 11, 28, 12, 0, 0)


@pytest.mark.parametrize("raw, expected", [
    ("2014:11:23 20:26:22", datetime(2014, 11, 23, 20, 26, 22)),
    ("2014-11-23 20:26:22", datetime(2014, 11, 23, 20, 26, 22)),
    ("2014:11:23 20:26:22\x00\x00\x00", datetime(2014, 11, 23, 20, 26, 22)),
    (b"2020:03:28 21:47:42\x00", datetime(2020, 3, 28, 21, 47, 42)),
    ("  2016/01/28 15:14:45  ", datetime(2016, 1, 28, 15, 14, 45)),
    ("2016:01:28T15:14:45", datetime(2016, 1, 28, 15, 14, 45)),
])
def test_parse_exif_datetime_accepts_what_cameras_write(raw, expected):
    assert hdr.parse_exif_datetime(raw) == expected


@pytest.mark.parametrize("raw", ["0000:00:00 00:00:00", "", "\x00\x00", "yesterday", "2016:13:40 10:00:00", None])
def test_parse_exif_datetime_rejects_malformed(raw):
    with pytest.raises(ValueError):
        hdr.parse_exif_datetime(raw)


def _inspect(data: bytes) -> dict:
    def fetch(_key, start, end):
        return data[start:end]

    def tail(_key, n):
        return data[-n:]

    return inspect_object("x.jpg", len(data), fetch, tail, NOW, block_size=1024)


def _jpeg(exif: bytes | None, size=(64, 48)) -> bytes:
    return encode_jpeg(Image.new("RGB", size, (10, 200, 30)), exif)


@pytest.mark.parametrize("data, status", [
    (b"", hdr.EMPTY_FILE),
    (b"just some text, not a picture", hdr.NOT_AN_IMAGE),
    (b"\xff\xd8\xff\xe0" + bytes(500) + b"\xff\xd9", hdr.CORRUPT),
    (_jpeg(exif_bytes(datetime(2020, 5, 1), "RECONYX", "HC500", "colon"))[:-300], hdr.TRUNCATED),
    (_jpeg(None), hdr.NO_EXIF_DATE),
    (_jpeg(exif_bytes(None, "RECONYX", "HC500", "colon")), hdr.NO_EXIF_DATE),
    (_jpeg(exif_bytes(datetime(1970, 1, 1), "RECONYX", "HC500", "colon")), hdr.IMPLAUSIBLE_DATE),
    (_jpeg(exif_bytes(datetime(2030, 1, 1), "RECONYX", "HC500", "colon")), hdr.IMPLAUSIBLE_DATE),
    (_jpeg(exif_bytes(datetime(2024, 3, 1, 8, 0, 1), "RECONYX", "HC500", "nul")), hdr.OK),
])
def test_every_bad_input_gets_a_status_and_reason(data, status):
    row = _inspect(data)
    assert row["status"] == status
    assert (row["reason"] is None) == (status == hdr.OK)


def test_date_time_original_wins_and_datetime_is_the_fallback():
    exif = Image.Exif()
    exif[hdr.TAG_DATETIME] = "2021:06:01 10:00:00"
    exif.get_ifd(hdr.TAG_EXIF_IFD)[hdr.TAG_DATETIME_ORIGINAL] = "2021-05-31 09:59:58"
    assert _inspect(_jpeg(exif.tobytes()))["captured_at"] == datetime(2021, 5, 31, 9, 59, 58)
    fallback = Image.Exif()
    fallback[hdr.TAG_DATETIME] = "2021:06:01 10:00:00"
    fallback.get_ifd(hdr.TAG_EXIF_IFD)[hdr.TAG_DATETIME_ORIGINAL] = "0000:00:00 00:00:00"
    row = _inspect(_jpeg(fallback.tobytes()))
    assert (row["status"], row["date_source"]) == (hdr.OK, "DateTime")


def test_header_read_fetches_a_fraction_of_a_large_image():
    data = encode_jpeg(Image.effect_noise((1920, 1080), 60).convert("RGB"),
                       exif_bytes(datetime(2022, 10, 25, 13, 10), "RECONYX", "HC600", "colon"), quality=95)
    row = inspect_object("big.jpg", len(data), lambda _k, s, e: data[s:e], lambda _k, n: data[-n:], NOW)
    assert row["status"] == hdr.OK and (row["width"], row["height"]) == (1920, 1080)
    assert row["bytes_read"] < len(data) / 20


def test_ranged_file_behaves_like_a_file():
    data = bytes(range(256)) * 40
    handle = RangedFile(lambda s, e: data[s:e], len(data), block_size=100)
    assert handle.read(10) == data[:10]
    handle.seek(-5, io.SEEK_END)
    assert handle.read() == data[-5:]
    handle.seek(250)
    assert handle.read(20) == data[250:270]
    assert handle.requests == 3


def test_real_camera_trap_photos_are_read_correctly(samples):
    store = LocalArchive(samples)
    rows = {o.key: inspect_object(o.key, o.size, store.read_range, store.read_tail, NOW)
            for o in store.list() if o.key.endswith(".jpg")}
    expected = {
        "channel-islands-gray-fox.jpg": (datetime(2014, 11, 23, 20, 26, 22), "RECONYX", "HC500 HYPERFIRE", (675, 506)),
        "nacti-crane.jpg": (datetime(2016, 2, 20, 8, 13, 15), "RECONYX", "HC550 HYPERFIRE", (600, 450)),
        "orinoquia-ocelot.jpg": (datetime(2020, 3, 28, 21, 47, 42), "BUSHNELL", None, (800, 600)),
        "idaho-cougar.jpg": (datetime(2016, 1, 28, 15, 14, 45), "RECONYX", "UltraFire", (800, 450)),
    }
    for name, (when, make, model, size) in expected.items():
        row = rows[name]
        assert (row["status"], row["captured_at"], row["camera_make"],
                row["camera_model"]) == (hdr.OK, when, make, model)
        assert (row["width"], row["height"]) == size
    for name in ("dzf-01.jpg", "snieves-sheep-ovar.jpg", "tegu.jpg"):
        assert rows[name]["status"] == hdr.NO_EXIF_DATE
    assert (rows["snieves-sheep-ovar.jpg"]["width"], rows["snieves-sheep-ovar.jpg"]["height"]) == (1920, 1080)
    assert all(r["bytes_read"] < 64 * 1024 for r in rows.values())


def _metadata_images() -> dict[str, bytes]:
    """Images of every format a release accepts, each carrying EXIF and text metadata a camera could write."""
    from PIL import PngImagePlugin

    picture = Image.effect_noise((40, 30), 60).convert("RGB")
    exif = exif_bytes(datetime(2024, 3, 1, 8, 0, 1), "RECONYX", "HC500 SERIAL-4711", "colon")
    png, text = io.BytesIO(), PngImagePlugin.PngInfo()
    text.add_text("Comment", "park donana, species sus, camera SERIAL-4711")
    picture.save(png, "PNG", pnginfo=text, exif=exif)
    tiff = io.BytesIO()
    picture.save(tiff, "TIFF", exif=exif, description="species sus at donana")
    webp = io.BytesIO()
    picture.save(webp, "WEBP", lossless=True, exif=exif, xmp=b"<x:xmpmeta>SERIAL-4711</x:xmpmeta>")
    main = encode_jpeg(picture, exif)
    xmp = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>SERIAL-4711</x:xmpmeta>"
    icc = b"ICC_PROFILE\x00\x01\x01" + b"SERIAL-4711 profile"
    extra = (b"\xff\xfe" + (len(b"SERIAL-4711 comment") + 2).to_bytes(2, "big") + b"SERIAL-4711 comment"
             + b"\xff\xe1" + (len(xmp) + 2).to_bytes(2, "big") + xmp
             + b"\xff\xe2" + (len(icc) + 2).to_bytes(2, "big") + icc)
    appended = encode_jpeg(Image.new("RGB", (8, 8), (1, 2, 3)), exif)  # a second picture after EOI
    return {"a.png": png.getvalue(), "b.tif": tiff.getvalue(), "c.webp": webp.getvalue(),
            "d.jpg": main[:2] + extra + main[2:] + appended}


def test_public_test_images_of_every_format_lose_their_metadata_not_their_pixels(tmp_path):
    """Before, only a JPEG's EXIF was stripped: PNG/TIFF/WebP went out with EXIF, XMP and text chunks, and a
    JPEG kept its comment, APP2 and a second picture (with its EXIF) appended after its EOI. Written as a
    release writes its public test ZIP, every image comes out with no metadata and the same decoded pixels."""
    import zipfile

    import numpy as np
    import pandas as pd

    from wildbench_assets.lib.releases import public_test_members
    from wildbench_assets.lib.zips import write_zip
    from wildbench_assets.resources.release_writer import open_stripped

    originals = _metadata_images()
    for name, data in originals.items():
        (tmp_path / name).write_bytes(data)
        assert b"SERIAL-4711" in data or b"sus" in data  # the fixture does carry metadata
    manifest = pd.DataFrame({"split": "test", "path": list(originals), "width": 40, "height": 30,
                             "public_id": [f"wb{i:016x}" for i in range(len(originals))]})
    target = tmp_path / "test.zip"
    write_zip(str(target), public_test_members(manifest, "test"), open_stripped(LocalArchive(tmp_path)))
    with zipfile.ZipFile(target) as archive:
        published = {row.path: archive.read(next(n for n in archive.namelist()
                                                 if n.startswith(f"images/{row.public_id}")))
                     for row in manifest.itertuples()}
    for path, data in published.items():
        for secret in (b"SERIAL-4711", b"RECONYX", b"sus", b"Exif\x00", b"xmpmeta", b"ICC_PROFILE"):
            assert secret not in data, (path, secret)
        with Image.open(io.BytesIO(data)) as image:
            exif = image.getexif()  # a TIFF's own structure tags are fine; no camera, date, text, XMP or GPS
            assert not {270, 271, 272, 305, 306, 315, 700, 0x8769, 0x8825} & set(exif)
            assert not {"exif", "xmp", "icc_profile", "comment", "description", "XML:com.adobe.xmp"} & set(image.info)
            assert image.format == Image.open(io.BytesIO(originals[path])).format
            assert np.array_equal(np.asarray(image.convert("RGB")),
                                  np.asarray(Image.open(io.BytesIO(originals[path])).convert("RGB")))
    assert published["d.jpg"].endswith(b"\xff\xd9") and published["d.jpg"].count(b"\xff\xd8") == 1
