"""Draw toy-like PNG pictures and rotating MP4 clips for the sample catalog with Pillow and PyAV."""

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

RGB = tuple[int, int, int]
Shape = Callable[[ImageDraw.ImageDraw, RGB, RGB], None]

CANVAS = 256  # toys are drawn at this size, then downsampled once
IMAGE_SIZE = 128
VIDEO_SIZE = 96
VIDEO_FRAMES = 12
VIDEO_FPS = 8
ACCENTS: tuple[RGB, ...] = ((250, 250, 245), (30, 30, 35), (245, 200, 40), (220, 50, 50), (60, 120, 220))
_BLACK, _GREY, _SKIN, _GLASS = (25, 25, 30), (150, 150, 155), (240, 200, 170), (170, 215, 240)
SHOPS = ("toyland", "BEST-DEALS", "kidzone shop", "HappyMart", "superstore")  # watermarks


@dataclass(frozen=True)
class PhotoStyle:
    """How one seller photographs its listing: the same for each of its photos."""

    studio: bool  # white seamless background, else a cluttered room
    scale: tuple[float, float]  # range of the toy's size as a share of the frame
    blur: float  # Gaussian blur radius in pixels; 0 for a sharp photo
    jpeg_quality: int | None  # re-encoded at this JPEG quality, None for a clean photo
    watermark: str | None  # shop name printed on a band across the photo
    tint: tuple[float, float, float]  # colour cast of the light


def photo_style(rng: np.random.Generator) -> PhotoStyle:
    """A seller's photo style: half studio shots, half lifestyle shots, some of them degraded."""
    studio = bool(rng.random() < 0.5)
    return PhotoStyle(
        studio=studio,
        scale=(0.6, 1.0) if studio else (0.35, 0.8),
        blur=float(rng.uniform(0.6, 1.8)) if rng.random() < 0.25 else 0.0,
        jpeg_quality=int(rng.integers(8, 36)) if rng.random() < 0.3 else None,
        watermark=str(rng.choice(SHOPS)) if rng.random() < 0.15 else None,
        tint=(1.0 + float(rng.uniform(-0.08, 0.08)), 1.0, 1.0 + float(rng.uniform(-0.08, 0.08))),
    )


def _shade(rgb: RGB, factor: float) -> RGB:
    r, g, b = (min(255, int(c * factor)) for c in rgb)
    return r, g, b


def _blocks(d: ImageDraw.ImageDraw, c: RGB, a: RGB) -> None:
    for row, colour in enumerate((c, a, _shade(c, 0.75))):
        top = 70 + row * 45
        d.rectangle((48 + row * 10, top, 208 - row * 10, top + 45), fill=colour, outline=_BLACK, width=2)
    for x in (78, 128, 178):
        d.ellipse((x - 14, 52, x + 14, 72), fill=c, outline=_BLACK, width=2)


def _plush(d: ImageDraw.ImageDraw, c: RGB, a: RGB) -> None:
    d.ellipse((68, 110, 188, 220), fill=c)
    for x in (62, 154):
        d.ellipse((x, 30, x + 40, 70), fill=_shade(c, 0.8))
    d.ellipse((78, 40, 178, 135), fill=c)
    d.ellipse((108, 85, 148, 118), fill=a)
    for x in (104, 140):
        d.ellipse((x, 70, x + 12, 82), fill=_BLACK)


def _rc_car(d: ImageDraw.ImageDraw, c: RGB, a: RGB) -> None:
    d.polygon([(90, 90), (170, 90), (195, 130), (65, 130)], fill=_GLASS, outline=_BLACK)
    d.rounded_rectangle((30, 125, 226, 175), radius=14, fill=c, outline=_BLACK, width=2)
    d.rectangle((30, 140, 226, 148), fill=a)
    for x in (75, 181):
        d.ellipse((x - 28, 150, x + 28, 206), fill=_BLACK)
        d.ellipse((x - 10, 168, x + 10, 188), fill=_GREY)
    d.line((200, 125, 215, 60), fill=_BLACK, width=3)


def _doll(d: ImageDraw.ImageDraw, c: RGB, a: RGB) -> None:
    d.ellipse((92, 22, 164, 100), fill=_shade(a, 0.6))
    d.ellipse((100, 35, 156, 95), fill=_SKIN)
    d.polygon([(128, 95), (70, 215), (186, 215)], fill=c, outline=_BLACK)
    for x0, x1 in ((100, 72), (156, 184)):
        d.line((x0, 120, x1, 165), fill=_SKIN, width=9)
    for x in (110, 146):
        d.line((x, 215, x, 245), fill=_SKIN, width=10)


def _puzzle(d: ImageDraw.ImageDraw, c: RGB, a: RGB) -> None:
    for i in range(9):
        x, y = 44 + (i % 3) * 56, 44 + (i // 3) * 56
        d.rectangle((x, y, x + 54, y + 54), fill=c if i % 2 == 0 else a, outline=_BLACK, width=2)
        d.ellipse((x + 44, y + 18, x + 64, y + 36), fill=c if i % 2 == 0 else a)


def _train(d: ImageDraw.ImageDraw, c: RGB, a: RGB) -> None:
    d.rectangle((40, 110, 130, 170), fill=c, outline=_BLACK, width=2)
    d.rectangle((95, 70, 130, 112), fill=_shade(c, 0.8), outline=_BLACK, width=2)
    d.rectangle((50, 80, 66, 110), fill=_BLACK)
    d.rectangle((140, 120, 225, 170), fill=a, outline=_BLACK, width=2)
    for x in (60, 110, 160, 205):
        d.ellipse((x - 15, 160, x + 15, 190), fill=_BLACK)


def _board_game(d: ImageDraw.ImageDraw, c: RGB, a: RGB) -> None:
    d.rectangle((30, 60, 226, 200), fill=_shade(c, 0.7), outline=_BLACK, width=3)
    for i in range(6 * 4):
        x, y = 40 + (i % 6) * 30, 70 + (i // 6) * 30
        d.rectangle((x, y, x + 28, y + 28), fill=c if (i + i // 6) % 2 else ACCENTS[0])
    d.ellipse((120, 20, 150, 70), fill=a, outline=_BLACK, width=2)
    d.rounded_rectangle((170, 30, 205, 65), radius=5, fill=ACCENTS[0], outline=_BLACK, width=2)


def _action_figure(d: ImageDraw.ImageDraw, c: RGB, a: RGB) -> None:
    d.ellipse((106, 20, 150, 64), fill=_SKIN, outline=_BLACK, width=2)
    d.rectangle((98, 66, 158, 145), fill=c, outline=_BLACK, width=2)
    d.rectangle((98, 130, 158, 142), fill=a)
    for x0, x1 in ((98, 62), (158, 194)):
        d.line((x0, 75, x1, 135), fill=c, width=16)
    for x0, x1 in ((112, 96), (144, 160)):
        d.line((x0, 145, x1, 235), fill=_shade(c, 0.6), width=18)


def _kite(d: ImageDraw.ImageDraw, c: RGB, a: RGB) -> None:
    top, left, right, mid, bottom = (128, 20), (48, 100), (208, 100), (128, 100), (128, 200)
    for i, (p, q) in enumerate(((top, left), (top, right), (left, bottom), (right, bottom))):
        d.polygon([p, q, mid], fill=c if i in (0, 3) else a, outline=_BLACK)
    d.line((128, 200, 110, 225, 140, 240, 120, 255), fill=_BLACK, width=2)


def _science_kit(d: ImageDraw.ImageDraw, c: RGB, a: RGB) -> None:
    d.rectangle((95, 30, 135, 100), fill=_GLASS, outline=_BLACK, width=2)
    d.polygon([(95, 100), (135, 100), (185, 215), (45, 215)], fill=_GLASS, outline=_BLACK)
    d.polygon([(76, 150), (154, 150), (185, 215), (45, 215)], fill=c)
    for x, y in ((100, 170), (125, 190), (140, 165)):
        d.ellipse((x, y, x + 12, y + 12), fill=ACCENTS[0])
    d.rounded_rectangle((195, 80, 220, 215), radius=10, fill=_GLASS, outline=_BLACK, width=2)
    d.rectangle((197, 150, 218, 212), fill=a)


def _play_kitchen(d: ImageDraw.ImageDraw, c: RGB, a: RGB) -> None:
    d.rectangle((40, 70, 216, 230), fill=c, outline=_BLACK, width=3)
    d.rectangle((60, 120, 196, 215), fill=_shade(c, 0.75), outline=_BLACK, width=2)
    d.rectangle((85, 140, 171, 190), fill=_GLASS)
    for x in (85, 171):
        d.ellipse((x - 22, 78, x + 22, 100), fill=_BLACK)
    for x in (70, 110, 150, 190):
        d.ellipse((x - 7, 104, x + 7, 116), fill=a)


def _robot(d: ImageDraw.ImageDraw, c: RGB, a: RGB) -> None:
    d.line((128, 15, 128, 40), fill=_BLACK, width=4)
    d.ellipse((120, 8, 136, 24), fill=a)
    d.rounded_rectangle((88, 38, 168, 98), radius=8, fill=c, outline=_BLACK, width=2)
    for x in (108, 148):
        d.ellipse((x - 10, 58, x + 10, 78), fill=a, outline=_BLACK)
    d.rectangle((78, 104, 178, 190), fill=c, outline=_BLACK, width=2)
    d.rectangle((105, 125, 151, 165), fill=_GREY)
    for x0, x1 in ((60, 76), (180, 196)):
        d.rectangle((x0, 110, x1, 175), fill=_shade(c, 0.7))
    for x in (95, 140):
        d.rectangle((x, 192, x + 22, 240), fill=_shade(c, 0.7))


SHAPES: dict[str, Shape] = {
    "blocks": _blocks,
    "plush": _plush,
    "rc_car": _rc_car,
    "doll": _doll,
    "puzzle": _puzzle,
    "train": _train,
    "board_game": _board_game,
    "action_figure": _action_figure,
    "kite": _kite,
    "science_kit": _science_kit,
    "play_kitchen": _play_kitchen,
    "robot": _robot,
}


def _decal(d: ImageDraw.ImageDraw, variant: int, a: RGB) -> None:
    """A printed mark in the middle of the toy, one design per variant, so subjects look different."""
    x, y, r = 128, 128, 22
    match variant % 6:
        case 0:
            d.ellipse((x - r, y - r, x + r, y + r), fill=a, outline=_BLACK, width=2)
        case 1:
            d.polygon([(x, y - r), (x + r, y + r), (x - r, y + r)], fill=a, outline=_BLACK)
        case 2:
            d.regular_polygon((x, y, r), 5, rotation=90, fill=a, outline=_BLACK)
        case 3:
            for dy in (-14, 0, 14):
                d.line((x - r, y + dy, x + r, y + dy), fill=a, width=6)
        case 4:
            d.line((x - r, y - r, x + r, y + r), fill=a, width=9)
            d.line((x - r, y + r, x + r, y - r), fill=a, width=9)
        case _:
            d.polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], fill=a, outline=_BLACK)


@lru_cache(maxsize=64)
def draw_toy(shape: str, colour: RGB, variant: int) -> Image.Image:
    """The toy on a transparent 128x128 canvas (drawn at 256 for smooth edges).

    ``variant`` picks its accent colour and the mark printed on it.
    """
    accent = ACCENTS[variant % len(ACCENTS)]
    if sum(abs(x - y) for x, y in zip(accent, colour, strict=True)) < 90:
        accent = ACCENTS[(variant + 1) % len(ACCENTS)]
    image = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    SHAPES[shape](draw, colour, accent)
    _decal(draw, variant, accent)
    return image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS)


def _rgb(rng: np.random.Generator, low: int, high: int) -> RGB:
    r, g, b = (int(v) for v in rng.integers(low, high, size=3))
    return r, g, b


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    return Image.new("RGB", (size, size), _rgb(rng, 170, 256))


def _studio(rng: np.random.Generator, size: int) -> Image.Image:
    """A white seamless backdrop, a shade darker towards the floor."""
    top, bottom = int(rng.integers(246, 256)), int(rng.integers(226, 242))
    ramp = np.linspace(top, bottom, size, dtype=np.float32)[:, None, None]
    return Image.fromarray(np.broadcast_to(ramp, (size, size, 3)).astype(np.uint8))


def _room(rng: np.random.Generator, size: int) -> Image.Image:
    """A cluttered room: wall and floor, furniture and other things in the way, a little grain."""
    room = Image.new("RGB", (size, size), _rgb(rng, 40, 230))
    draw = ImageDraw.Draw(room)
    draw.rectangle((0, int(size * rng.uniform(0.45, 0.75)), size, size), fill=_rgb(rng, 40, 230))
    for _ in range(int(rng.integers(4, 10))):
        x, y = (int(v) for v in rng.integers(-20, size, size=2))
        w, h = (int(v) for v in rng.integers(10, size // 2, size=2))
        shape = draw.ellipse if rng.random() < 0.4 else draw.rectangle
        shape((x, y, x + w, y + h), fill=_rgb(rng, 0, 256))
    room = room.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.0))))
    grain = rng.normal(0, 8, size=(size, size, 1))
    return Image.fromarray(np.clip(np.asarray(room, dtype=np.float32) + grain, 0, 255).astype(np.uint8))


def _watermark(photo: Image.Image, text: str, rng: np.random.Generator) -> Image.Image:
    """A translucent band with the shop's name across the top or bottom of the photo."""
    band = Image.new("RGBA", photo.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(band)
    top = 4 if rng.random() < 0.5 else photo.height - 22
    draw.rectangle((0, top, photo.width, top + 18), fill=(255, 255, 255, 150))
    draw.text((6, top + 2), text, fill=(200, 30, 30, 220), font=ImageFont.load_default(size=13))
    return Image.alpha_composite(photo.convert("RGBA"), band).convert("RGB")


def _degrade(photo: Image.Image, style: PhotoStyle) -> Image.Image:
    """Blur and JPEG blocking, as from a cheap camera or a re-uploaded photo."""
    if style.blur:
        photo = photo.filter(ImageFilter.GaussianBlur(style.blur))
    if style.jpeg_quality is not None:
        buffer = io.BytesIO()
        photo.save(buffer, format="JPEG", quality=style.jpeg_quality)
        photo = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return photo


def _light(image: Image.Image, rng: np.random.Generator, style: PhotoStyle) -> Image.Image:
    """Apply a random directional light, overall brightness and the style's colour cast.

    Studio light is even and bright; room light varies more.
    """
    size = image.width
    direction = rng.uniform(0, 2 * math.pi)
    strength = rng.uniform(0.0, 0.1) if style.studio else rng.uniform(0.1, 0.4)
    brightness = rng.uniform(1.0, 1.1) if style.studio else rng.uniform(0.75, 1.15)
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    gain = brightness * (1 + strength * (xx * math.cos(direction) + yy * math.sin(direction)))
    pixels = np.asarray(image, dtype=np.float32) * gain[..., None] * np.array(style.tint, dtype=np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def render_image(toy: Image.Image, rng: np.random.Generator, style: PhotoStyle) -> Image.Image:
    """A 128x128 product photo of ``toy`` in a seller's ``style``, with a random pose, crop and lighting.

    The toy may sit off centre and partly out of frame.

    Args:
        toy: the toy from :func:`draw_toy`.
        rng: source of the pose, crop, backdrop and light.
        style: the seller's photo style, from :func:`photo_style`.

    Returns:
        An RGB image.
    """
    side = int(IMAGE_SIZE * rng.uniform(*style.scale))
    posed = toy.resize((side, side), Image.Resampling.LANCZOS).rotate(
        rng.uniform(-35, 35), resample=Image.Resampling.BILINEAR
    )
    slack = (IMAGE_SIZE - side) // 2 + side // 4
    shift = rng.integers(-slack, slack + 1, size=2)
    photo = _studio(rng, IMAGE_SIZE) if style.studio else _room(rng, IMAGE_SIZE)
    photo.paste(
        posed, ((IMAGE_SIZE - side) // 2 + int(shift[0]), (IMAGE_SIZE - side) // 2 + int(shift[1])), posed
    )
    photo = _degrade(_light(photo, rng, style), style)
    return _watermark(photo, style.watermark, rng) if style.watermark else photo


def _spin_frames(toy: Image.Image, rng: np.random.Generator) -> list[Image.Image]:
    """One full turn of ``toy`` about its vertical axis: a squeeze, mirrored when seen from behind."""
    side, start = int(VIDEO_SIZE * 0.85), rng.uniform(0, 2 * math.pi)
    tilted = toy.resize((side, side), Image.Resampling.LANCZOS).rotate(
        rng.uniform(-10, 10), resample=Image.Resampling.BILINEAR
    )
    background, frames = _background(rng, VIDEO_SIZE), []
    for index in range(VIDEO_FRAMES):
        turn = start + 2 * math.pi * index / VIDEO_FRAMES
        width = max(int(side * abs(math.cos(turn))), 2)
        turned = tilted.resize((width, side), Image.Resampling.BILINEAR)
        if math.cos(turn) < 0:
            turned = turned.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        frame = background.copy()
        frame.paste(turned, ((VIDEO_SIZE - width) // 2, (VIDEO_SIZE - side) // 2), turned)
        frames.append(frame)
    return frames


def write_video(path: Path, toy: Image.Image, rng: np.random.Generator) -> None:
    """Write a short H.264 MP4 of ``toy`` making one full turn on a random background.

    Args:
        path: the ``.mp4`` file to write.
        toy: the toy from :func:`draw_toy`.
        rng: source of the background, start angle and tilt.
    """
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=VIDEO_FPS, options={"preset": "veryfast", "crf": "26"})
        stream.width = stream.height = VIDEO_SIZE
        stream.pix_fmt = "yuv420p"
        for image in _spin_frames(toy, rng):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24")))
        container.mux(stream.encode(None))
