"""Decoding every pixel of an image, strictly: the one place that says whether an image is usable.

Pillow (libjpeg) fills the missing part of a JPEG whose scan data was cut — an upload cut short with an
end marker appended, a card read error — with flat grey and only *warns*. A benchmark must not train on
half-grey photos, so JPEGs are also decoded by libjpeg-turbo in strict mode (simplejpeg), which turns
those warnings into errors; at 1/8 scale that costs a few milliseconds, and every entropy-coded byte is
still read.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps

JPEG_SIGNATURE = b"\xff\xd8"


class UndecodableImage(ValueError):
    """The bytes are not a whole, decodable image; the message says why."""


class ImageTooLarge(UndecodableImage):
    """The header claims more pixels than may be decoded."""


def header_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the image's header alone, nothing decoded: a decompression bomb (a small file
    that claims 144 megapixels) is measured before it can take any memory."""
    try:
        with warnings.catch_warnings():  # the size is the caller's to judge: Pillow's bomb warning is noise
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except Image.DecompressionBombError as err:  # more pixels than Pillow will even open
        raise ImageTooLarge(str(err)) from err
    except Exception as err:  # noqa: BLE001 - Pillow raises many kinds for bad data (its own bomb error too)
        raise UndecodableImage(f"{type(err).__name__}: {err}") from err


def decode_image(data: bytes) -> Image.Image:
    """The image, EXIF-orientation applied, as RGB; UndecodableImage if any part cannot be decoded."""
    if data[:2] == JPEG_SIGNATURE:
        import simplejpeg

        try:
            simplejpeg.decode_jpeg(data, strict=True, min_height=1, min_width=1)
        except ValueError as err:
            raise UndecodableImage(f"corrupt JPEG data ({err})") from err
    try:
        with Image.open(io.BytesIO(data)) as image:
            return ImageOps.exif_transpose(image).convert("RGB")  # decodes every pixel
    except Exception as err:  # noqa: BLE001 - Pillow raises many kinds for bad data
        raise UndecodableImage(f"{type(err).__name__}: {err}") from err
