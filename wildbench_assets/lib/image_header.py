"""Integrity status, size, camera and capture time of an image, from its header bytes only.

The caller hands in a seekable file object that fetches bytes lazily (see `ranged.RangedFile`) and
the file's last bytes: PIL reads the markers up to the frame header, so EXIF, width and height cost a
few KiB, and the tail tells a truncated JPEG/PNG from a whole one without reading the pixels.
"""

from __future__ import annotations

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


# Segments that carry metadata, not pixels: EXIF/XMP (APP1), maker and vendor blocks (APP3-APP13, APP15),
# comments. Kept: APP0 (JFIF), APP2 (ICC colour profile), APP14 (Adobe colour transform).
_METADATA_MARKERS = {0xE1, *range(0xE3, 0xEE), 0xEF, 0xFE}


def strip_jpeg_metadata(data: bytes) -> bytes:
    """The JPEG without its metadata segments (camera make and model, serial numbers, GPS, dates, maker
    notes), pixels untouched: the entropy-coded data is copied byte for byte. Anything that is not a
    well-formed JPEG header is returned as it is."""
    if data[:2] != b"\xff\xd8":
        return data
    out, position = [data[:2]], 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xDA:  # start of scan: the rest is image data
            break
        length = int.from_bytes(data[position + 2:position + 4], "big")
        end = position + 2 + length
        if length < 2 or end > len(data):
            return data
        if marker not in _METADATA_MARKERS:
            out.append(data[position:end])
        position = end
    else:
        return data
    out.append(data[position:])
    return b"".join(out)
