"""Photo decoding and preprocessing into the image encoder's input (RGB uint8, 224x224, channels last)."""

import io

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from stream.contracts.shapes import IMAGE_SIZE
from stream.errors import MediaError

# About 40 megapixels: beyond any product photo, yet decoding it stays well under a second and 200 MB.
MAX_IMAGE_PIXELS = 40_000_000
# Transparent areas are laid over white, the usual background of product photos.
BACKGROUND = (255, 255, 255)

ImageArray = npt.NDArray[np.uint8]


def decode_image(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> Image.Image:
    """Decode a photo (any format Pillow reads; the first frame of an animation).

    The size in the header is checked before any pixel is decoded, so a decompression bomb costs nothing.

    Args:
        data: The file's bytes.
        max_pixels: Largest width x height accepted.

    Returns:
        The decoded image, fully loaded.

    Raises:
        MediaError: ``undecodable_image`` for bytes that are no image or a truncated one,
            ``too_many_pixels`` for an image larger than ``max_pixels``.
    """
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > max_pixels:
            raise MediaError(
                "too_many_pixels",
                f"image is {width}x{height} pixels, more than the {max_pixels} accepted; "
                "publish a smaller rendition of the photo",
            )
        image.load()
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaError("too_many_pixels", f"image refused as a decompression bomb: {exc}") from exc
    except Exception as exc:
        # Pillow's format plugins fail with UnidentifiedImageError, OSError, SyntaxError, ValueError, but
        # also struct.error, EOFError or IndexError on damaged files: all mean these bytes are no photo.
        raise MediaError(
            "undecodable_image", f"{len(data)} bytes are not a readable image ({exc}); check the photo URI"
        ) from exc
    return image


def upright(image: Image.Image) -> Image.Image:
    """Return ``image`` turned as its EXIF orientation says; as stored when its EXIF cannot be read."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - Pillow's EXIF parser raises SyntaxError, struct.error, KeyError...
        return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Return ``image`` upright (EXIF orientation applied) in RGB, transparency laid over white."""
    upright_image = upright(image)
    if upright_image.mode == "RGB":
        return upright_image
    if upright_image.mode in ("RGBA", "LA", "PA") or "transparency" in upright_image.info:
        rgba = upright_image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return upright_image.convert("RGB")


def to_model_input(image: Image.Image, size: int = IMAGE_SIZE) -> ImageArray:
    """Turn a photo or video frame into the image encoder's input.

    Steps: EXIF orientation, RGB, shorter side resized to ``size`` (bicubic, antialiased), center crop. The
    crop is taken first, in source pixels, so a very long and thin image never becomes a huge one.

    Args:
        image: A decoded image of any mode and size.
        size: Side of the square output.

    Returns:
        uint8 array of shape (size, size, 3).
    """
    rgb = to_rgb(image)
    width, height = rgb.size
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    square = rgb.resize((size, size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side))
    return np.asarray(square, dtype=np.uint8)


def preprocess_image(data: bytes) -> ImageArray:
    """Decode a photo's bytes and return the image encoder's input, uint8 (224, 224, 3).

    Raises:
        MediaError: see :func:`decode_image`; ``undecodable_image`` for any other failure to convert it.
    """
    image = decode_image(data)
    try:
        return to_model_input(image)
    except Exception as exc:
        # A damaged file can pass decoding and still fail in a mode conversion or resize: its problem alone.
        raise MediaError(
            "undecodable_image",
            f"{len(data)} bytes decode to an unusable image ({type(exc).__name__}: {exc}); "
            "check the photo URI",
        ) from exc
