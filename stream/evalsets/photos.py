"""A seller's photo of a product from a vendor's artwork: scaled, turned and placed on that seller's backdrop."""

import io

import numpy as np
from PIL import Image, ImageFilter

from stream.errors import CatalogError

PHOTO_SIZE = 256
STUDIO, TINTED, TEXTURED = "studio", "tinted", "textured"
BACKDROPS = (STUDIO, TINTED, TEXTURED)


def _backdrop(style: str, rng: np.random.Generator) -> Image.Image:
    if style == STUDIO:
        grey = int(rng.integers(236, 256))
        return Image.new("RGB", (PHOTO_SIZE, PHOTO_SIZE), (grey, grey, grey))
    base = rng.integers(60, 230, size=3)
    if style == TINTED:
        ramp = np.linspace(0.85, 1.1, PHOTO_SIZE)[:, None, None]
        pixels = np.clip(base[None, None, :] * ramp, 0, 255) * np.ones((1, PHOTO_SIZE, 1))
        return Image.fromarray(pixels.astype(np.uint8), "RGB")
    noise = rng.normal(0.0, 22.0, size=(PHOTO_SIZE // 8, PHOTO_SIZE // 8, 3))
    coarse = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")
    return coarse.resize((PHOTO_SIZE, PHOTO_SIZE), Image.Resampling.BICUBIC)


def stage_photo(art_png: bytes, rng: np.random.Generator) -> Image.Image:
    """The artwork as one seller photographs it: size, position, tilt, backdrop and sharpness vary.

    Raises:
        CatalogError: the artwork is not a readable image.
    """
    try:
        art = Image.open(io.BytesIO(art_png)).convert("RGBA")
    except (OSError, ValueError) as exc:
        raise CatalogError(
            f"cannot read an artwork image: {exc}; delete the archive and fetch again"
        ) from exc
    side = int(rng.integers(120, 221))
    art = art.resize((side, side), Image.Resampling.BICUBIC)
    art = art.rotate(float(rng.uniform(-15.0, 15.0)), resample=Image.Resampling.BICUBIC, expand=True)
    photo = _backdrop(BACKDROPS[int(rng.integers(len(BACKDROPS)))], rng)
    slack_x, slack_y = max(0, PHOTO_SIZE - art.width), max(0, PHOTO_SIZE - art.height)
    photo.paste(art, (int(rng.integers(0, slack_x + 1)), int(rng.integers(0, slack_y + 1))), art)
    if rng.random() < 0.4:
        photo = photo.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 1.6))))
    return photo
