"""Integrity status, size, camera and capture time of an image, from its header bytes only.

The caller hands in a seekable file object that fetches bytes lazily (see `ranged.RangedFile`) and
the file's last bytes: PIL reads the markers up to the frame header, so EXIF, width and height cost a
few KiB, and the tail tells a truncated JPEG/PNG from a whole one without reading the pixels.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO

from PIL import Image, JpegImagePlugin, PngImagePlugin, TiffImagePlugin, UnidentifiedImageError

OK = "ok"
CORRUPT = "corrupt"
TRUNCATED = "truncated"
EMPTY_FILE = "empty file"
NOT_AN_IMAGE = "not an image"
NO_EXIF_DATE = "no exif date"
IMPLAUSIBLE_DATE = "implausible date"
NOT_A_FILE = "not a regular file"  # a link or special file in a local archive: listed, never read
STATUSES = (OK, CORRUPT, TRUNCATED, EMPTY_FILE, NOT_AN_IMAGE, NO_EXIF_DATE, IMPLAUSIBLE_DATE, NOT_A_FILE)
# Statuses whose pixels cannot be used at all; the others are readable images.
UNREADABLE = frozenset({CORRUPT, TRUNCATED, EMPTY_FILE, NOT_AN_IMAGE, NOT_A_FILE})

EARLIEST_PLAUSIBLE = datetime(2001, 1, 1)  # camera clocks reset to 1970/2000; digital traps post-date this
TAIL_BYTES = 64
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")  # what counts as a photo file

TAG_DATETIME = 306  # IFD0 DateTime
TAG_MAKE = 271
TAG_MODEL = 272
TAG_EXIF_IFD = 0x8769
TAG_DATETIME_ORIGINAL = 36867

_MAGIC = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
# PIL's own plugin classes, called directly: `Image.open` can be monkeypatched by other libraries
# (ultralytics wraps it to install a HEIF plugin on the first unidentified file).
OPENERS = {"JPEG": JpegImagePlugin.JpegImageFile, "PNG": PngImagePlugin.PngImageFile,
           "TIFF": TiffImagePlugin.TiffImageFile}
_DATE = re.compile(r"^(\d{4})[:\-/.](\d{1,2})[:\-/.](\d{1,2})[ T]+(\d{1,2}):(\d{2}):(\d{2})")


@dataclass(frozen=True)
class ImageHeader:
    status: str
    reason: str | None = None
    captured_at: datetime | None = None
    date_source: str | None = None
    exif_date_raw: str | None = None
    width: int | None = None
    height: int | None = None
    image_format: str | None = None
    camera_make: str | None = None
    camera_model: str | None = None


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="ignore")
    text = str(value).replace("\x00", " ").strip()
    return text or None


def parse_exif_datetime(value: object) -> datetime:
    """An EXIF date as real cameras write it: colons or dashes, NUL padding, bytes. ValueError if not."""
    text = _text(value)
    if text is None:
        raise ValueError("empty date")
    match = _DATE.match(text)
    if not match:
        raise ValueError(f"unparseable date {text!r}")
    return datetime(*(int(part) for part in match.groups()))  # ValueError for 0000:00:00 and friends


def sniff_format(head: bytes) -> str | None:
    return next((fmt for magic, fmt in _MAGIC.items() if head.startswith(magic)), None)


def is_truncated(image_format: str, tail: bytes) -> bool:
    """A JPEG ends with the EOI marker (some cameras pad after it); a PNG with its IEND chunk."""
    if image_format == "JPEG":
        return b"\xff\xd9" not in tail[-TAIL_BYTES:]
    if image_format == "PNG":
        return b"IEND" not in tail[-TAIL_BYTES:]
    return False


def _capture_time(exif: Image.Exif, now: datetime) -> tuple[str, str | None, datetime | None, str | None, str | None]:
    """(status, reason, captured_at, date_source, raw) from DateTimeOriginal, falling back to DateTime."""
    candidates = (
        ("DateTimeOriginal", exif.get_ifd(TAG_EXIF_IFD).get(TAG_DATETIME_ORIGINAL)),
        ("DateTime", exif.get(TAG_DATETIME)),
    )
    problems: list[str] = []
    for source, raw_value in candidates:
        raw = _text(raw_value)
        if raw is None:
            continue
        try:
            when = parse_exif_datetime(raw)
        except ValueError:
            problems.append(f"{source} {raw!r} is not a date")
            continue
        if when < EARLIEST_PLAUSIBLE or when > now + timedelta(days=1):
            return IMPLAUSIBLE_DATE, f"{source} {raw!r} is before 2001 or in the future", None, source, raw
        return OK, None, when, source, raw
    reason = "; ".join(problems) or "no DateTimeOriginal or DateTime tag"
    raw = _text(candidates[0][1]) or _text(candidates[1][1])
    return NO_EXIF_DATE, reason, None, None, raw


def read_image_header(fileobj: BinaryIO, size: int, tail: bytes, now: datetime) -> ImageHeader:
    """Classify one image from its header; never raises for bad data, returns a status and reason."""
    if size == 0:
        return ImageHeader(EMPTY_FILE, "the object has 0 bytes")
    head = fileobj.read(16)
    fileobj.seek(0)
    image_format = sniff_format(head)
    if image_format is None:
        return ImageHeader(NOT_AN_IMAGE, f"no known image signature (starts with {head[:8]!r})")
    try:
        with OPENERS[image_format](fileobj) as image:
            width, height = image.size
            image_format = image.format or image_format
            exif = image.getexif()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as err:
        if is_truncated(image_format, tail):
            return ImageHeader(TRUNCATED, f"{image_format} cut short inside its header", image_format=image_format)
        detail = "" if isinstance(err, UnidentifiedImageError) else f" ({err})"  # PIL's text names our file object
        return ImageHeader(CORRUPT, f"{image_format} signature but the header cannot be parsed{detail}",
                           image_format=image_format)
    if width <= 0 or height <= 0:
        return ImageHeader(CORRUPT, f"header declares a {width}x{height} image", image_format=image_format)
    camera = {"camera_make": _text(exif.get(TAG_MAKE)), "camera_model": _text(exif.get(TAG_MODEL))}
    if image_format and is_truncated(image_format, tail):
        return ImageHeader(
            TRUNCATED, f"{image_format} does not end with its end marker", width=width, height=height,
            image_format=image_format, **camera,
        )
    try:
        status, reason, captured_at, source, raw = _capture_time(exif, now)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError) as err:  # malformed EXIF IFDs
        status, reason, captured_at, source, raw = NO_EXIF_DATE, f"EXIF unreadable: {err}", None, None, None
    return ImageHeader(status, reason, captured_at, source, raw, width, height, image_format, **camera)


# A public test image keeps only what decoding needs. JPEG: the frame, tables and scans; APP0 only as a bare
# JFIF header (no thumbnail: it says the components are YCbCr) and APP14 only as its 12-byte Adobe colour
# transform (it says whether they are YCbCr, RGB or YCCK); every other APPn (EXIF/XMP, ICC profiles whose
# description can name the camera, FlashPix, maker blocks) and every comment is dropped, and the file ends at
# the main image's EOI (cameras append a second JPEG with its own EXIF after it). Other formats are decoded
# and re-encoded losslessly in their own format, with no text, EXIF, XMP or ICC chunk: the pixels are the same.
_RST = range(0xD0, 0xD8)
_LOSSLESS = {"PNG": {"format": "PNG", "optimize": False}, "TIFF": {"format": "TIFF", "compression": "tiff_lzw"},
             "WEBP": {"format": "WEBP", "lossless": True, "quality": 100, "exact": True}, "BMP": {"format": "BMP"}}


def _jpeg_segment(marker: int, payload: bytes) -> bytes | None:
    """The segment as published, or None to drop it."""
    if marker == 0xE0:
        if not payload.startswith(b"JFIF\x00") or len(payload) < 14:
            return None
        payload = payload[:12] + b"\x00\x00"  # no thumbnail
    elif marker == 0xEE:
        if not payload.startswith(b"Adobe") or len(payload) < 12:
            return None
        payload = payload[:12]
    elif 0xE1 <= marker <= 0xEF or marker == 0xFE:
        return None
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def _strip_jpeg(data: bytes) -> bytes | None:
    """The JPEG as `_jpeg_segment` keeps it, up to its EOI; None if it is not a well-formed JPEG."""
    out, position, scanning = [b"\xff\xd8"], 2, False
    while position < len(data):
        if scanning:  # entropy-coded data: runs to the next marker that is not stuffing or a restart
            start = position
            while True:
                position = data.find(b"\xff", position)
                if position < 0 or position + 1 >= len(data):
                    return None
                following = data[position + 1]
                if following == 0x00 or following in _RST:
                    position += 2
                elif following == 0xFF:
                    position += 1
                else:
                    break
            out.append(data[start:position])
            scanning = False
            continue
        if data[position] != 0xFF or position + 1 >= len(data):
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0xD9:  # EOI: whatever follows (another picture, padding) is not published
            out.append(b"\xff\xd9")
            return b"".join(out)
        if marker in _RST or marker in (0x01, 0xD8):
            return None
        if position + 4 > len(data):
            return None
        length = int.from_bytes(data[position + 2:position + 4], "big")
        end = position + 2 + length
        if length < 2 or end > len(data):
            return None
        kept = _jpeg_segment(marker, data[position + 4:end])
        if kept is not None:
            out.append(kept)
        position, scanning = end, marker == 0xDA
    return None


def _reencoded(data: bytes) -> bytes | None:
    """A non-JPEG image decoded and written again losslessly in its own format with nothing but its pixels
    (and palette or transparency, which decoding needs); None if it cannot be decoded."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            options = _LOSSLESS.get(image.format or "")
            if options is None:
                return None
            image.load()
            clean = image.copy()
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
        return None
    clean.info = {k: v for k, v in clean.info.items() if k == "transparency"}
    buffer = io.BytesIO()
    try:
        clean.save(buffer, **options, **({"transparency": clean.info["transparency"]}
                                         if "transparency" in clean.info and options["format"] == "PNG" else {}))
    except (OSError, ValueError, KeyError):
        return None
    return buffer.getvalue()


def strip_metadata(data: bytes) -> bytes:
    """The image without its metadata (camera make, model and serial, GPS, dates, maker notes, comments,
    thumbnails, appended pictures), its decoded pixels unchanged: a JPEG's entropy-coded data is copied
    byte for byte; other formats are re-encoded losslessly. Bytes that cannot be parsed as an image are
    returned as they are (the decode check of what is published judges them)."""
    if data[:3] == b"\xff\xd8\xff":
        return _strip_jpeg(data) or data
    return _reencoded(data) or data
