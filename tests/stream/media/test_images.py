"""Tests for stream/media/images.py: decoding limits and the image encoder's input."""

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from stream.contracts.shapes import IMAGE_SIZE
from stream.errors import MediaError
from stream.media.images import decode_image, preprocess_image, to_model_input

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
EXIF_ORIENTATION = 0x0112


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def png_claiming_size(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header is rewritten to claim ``width`` x ``height``."""
    data = bytearray(encode(Image.new("L", (1, 1))))
    ihdr = data[12:29]  # chunk type + 13 data bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def stripes(
    colours: list[tuple[int, int, int]], stripe: tuple[int, int], vertical: bool = True
) -> Image.Image:
    """Side-by-side (or stacked) solid stripes of ``stripe`` size each."""
    count = len(colours)
    size = (stripe[0] * count, stripe[1]) if vertical else (stripe[0], stripe[1] * count)
    image = Image.new("RGB", size)
    for index, colour in enumerate(colours):
        box = (stripe[0] * index, 0) if vertical else (0, stripe[1] * index)
        image.paste(colour, (*box, box[0] + stripe[0], box[1] + stripe[1]))
    return image


def assert_solid(pixels: np.ndarray, colour: tuple[int, int, int], tolerance: int = 3) -> None:
    assert np.abs(pixels.astype(int) - np.array(colour)).max() <= tolerance


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_decode_image_reads_common_formats(fmt: str) -> None:
    image = decode_image(encode(Image.new("RGB", (40, 30), GREEN), fmt))
    assert image.size == (40, 30)


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_decode_image_refuses_bytes_that_are_no_image(data: bytes) -> None:
    with pytest.raises(MediaError, match="not a readable image") as caught:
        decode_image(data)
    assert caught.value.reason == "undecodable_image"


def test_decode_image_refuses_a_truncated_image() -> None:
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise))
    with pytest.raises(MediaError) as caught:
        decode_image(data[: len(data) // 2])
    assert caught.value.reason == "undecodable_image"


@pytest.mark.parametrize("size", [(8000, 6000), (100_000, 100_000)])
def test_decode_image_refuses_a_decompression_bomb_before_decoding(size: tuple[int, int]) -> None:
    with pytest.raises(MediaError) as caught:
        decode_image(png_claiming_size(*size))
    assert caught.value.reason == "too_many_pixels"


def test_decode_image_pixel_cap_is_a_parameter() -> None:
    data = encode(Image.new("RGB", (20, 10)))
    assert decode_image(data, max_pixels=200).size == (20, 10)
    with pytest.raises(MediaError, match="20x10 pixels, more than the 199"):
        decode_image(data, max_pixels=199)


@pytest.mark.parametrize("size", [(10, 7), (224, 224), (300, 100), (100, 900), (1000, 750), (20_000, 2)])
def test_to_model_input_shape_and_type(size: tuple[int, int]) -> None:
    array = to_model_input(Image.new("RGB", size, BLUE))
    assert array.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    assert array.dtype == np.uint8
    assert_solid(array, BLUE)


@pytest.mark.parametrize("vertical", [True, False])
def test_to_model_input_keeps_the_center_of_the_longer_side(vertical: bool) -> None:
    array = to_model_input(stripes([RED, GREEN, BLUE], (100, 100), vertical))
    # The middle stripe fills the crop; only the seams may blend with its neighbours.
    inner = array[:, 4:-4] if vertical else array[4:-4, :]
    assert_solid(inner, GREEN)


def test_to_model_input_applies_exif_orientation() -> None:
    image = stripes([(255, 255, 255), (0, 0, 0)], (200, 100), vertical=False)  # white over black, landscape
    exif = image.getexif()
    exif[EXIF_ORIENTATION] = 6  # stored image must be turned 90 degrees clockwise for display
    array = to_model_input(Image.open(io.BytesIO(encode(image, "JPEG", exif=exif.tobytes(), quality=95))))
    # Upright it is portrait: the white top becomes the right side, so the crop is black left, white right.
    assert array[:, :100].mean() < 20
    assert array[:, 124:].mean() > 235


def test_to_model_input_lays_transparency_over_white() -> None:
    image = Image.new("RGBA", (50, 50), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (20, 20, 30, 30))
    array = to_model_input(Image.open(io.BytesIO(encode(image))))
    assert_solid(array[:40, :40], (255, 255, 255))
    assert_solid(array[110:114, 110:114], BLUE)


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "I;16"])
def test_to_model_input_converts_any_mode_to_rgb(mode: str) -> None:
    array = to_model_input(Image.new("RGB", (30, 30), (200, 200, 200)).convert(mode))
    assert array.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)


def test_preprocess_image_decodes_and_prepares() -> None:
    array = preprocess_image(encode(stripes([RED, GREEN, BLUE], (80, 50))))
    assert array.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    assert_solid(array[:, 10:-10], GREEN)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_a_photo_whose_exif_is_no_tiff_is_used_as_stored(fmt: str) -> None:
    data = encode(Image.new("RGB", (20, 10), GREEN), fmt, exif=b"MX\x00*\x00\x00\x00\x08\x00\x00")
    assert_solid(preprocess_image(data), GREEN)  # it raised SyntaxError from the EXIF parser


def fuzz_seeds() -> list[bytes]:
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 255, (24, 32, 3), dtype=np.uint8))
    exif = noise.getexif()
    exif[EXIF_ORIENTATION] = 6
    with_exif = [encode(noise, fmt, exif=exif.tobytes()) for fmt in ("PNG", "JPEG", "WEBP")]
    return [*with_exif, encode(noise, "GIF"), encode(noise, "TIFF"), encode(noise, "BMP")]


FUZZ_PHOTOS = fuzz_seeds()
# Headers and metadata sit in the first few hundred bytes: mutate there often, anywhere sometimes.
OFFSETS = st.one_of(st.integers(0, 400), st.integers(0, 10_000))


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::PIL.Image.DecompressionBombWarning")
@settings(max_examples=500, deadline=None, database=None)
@given(
    st.sampled_from(FUZZ_PHOTOS),
    st.lists(st.tuples(OFFSETS, st.integers(0, 255)), min_size=1, max_size=8),
)
def test_a_mutated_photo_decodes_or_fails_as_a_media_error(
    seed: bytes, changes: list[tuple[int, int]]
) -> None:
    data = bytearray(seed)
    for offset, value in changes:
        data[offset % len(data)] = value
    try:
        array = preprocess_image(bytes(data))
    except MediaError:
        return
    assert array.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
