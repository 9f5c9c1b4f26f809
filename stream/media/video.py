"""Uniform frame sampling from short video clips with PyAV, each frame made an image encoder input."""

import io
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

import av
import numpy as np
from av.container import InputContainer
from av.video.stream import VideoStream
from PIL import Image

from stream.errors import MediaError
from stream.media.images import ImageArray, to_model_input

MAX_FRAMES = 8
MAX_VIDEO_SECONDS = 30.0
MAX_VIDEO_PIXELS = 3840 * 2160
# The first 30 s at 60 fps: decoding stops here even if a clip's timestamps never reach the last sample.
MAX_DECODED_FRAMES = 1800
# Top-level boxes an MP4/QuickTime file starts with, found at bytes 4-8.
ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
EBML_MAGIC = b"\x1a\x45\xdf\xa3"

T = TypeVar("T")


def container_format(data: bytes) -> str:
    """Name the FFmpeg demuxer for ``data`` from its magic bytes.

    The demuxer is chosen here rather than by FFmpeg's probing, which would also accept formats such as
    HLS playlists that open further URLs or local files.

    Raises:
        MediaError: ``undecodable_video`` when the bytes are neither MP4/QuickTime nor Matroska/WebM.
    """
    if data[4:8] in ISO_BOXES:
        return "mov"
    if data.startswith(EBML_MAGIC):
        return "matroska"
    raise MediaError(
        "undecodable_video",
        f"{len(data)} bytes are neither MP4/QuickTime nor Matroska/WebM; publish the clip as MP4 or WebM",
    )


def sample_times(window_s: float, count: int) -> list[float]:
    """Return ``count`` times spread evenly over ``[0, window_s)``, each in the middle of its slice."""
    return [(index + 0.5) * window_s / count for index in range(count)]


def nearest_frames(frames: Iterable[tuple[float, T]], targets: Sequence[float]) -> list[T]:
    """Pick, for each target time, the frame shown nearest to it; a frame picked twice is kept once.

    ``frames`` is consumed only until every target is settled (one frame past the last target), so a
    lazy decoder does no more work than needed. Targets past the last frame get the last frame.

    Args:
        frames: ``(time_s, frame)`` pairs in presentation order.
        targets: Increasing times in seconds.

    Returns:
        The picked frames in presentation order.
    """
    pending = deque(targets)
    picked: list[tuple[float, T]] = []
    previous: tuple[float, T] | None = None
    for current in frames:
        while pending and pending[0] <= current[0]:
            target = pending.popleft()
            nearer_previous = previous is not None and target - previous[0] <= current[0] - target
            choice = previous if previous is not None and nearer_previous else current
            if not picked or picked[-1][0] != choice[0]:
                picked.append(choice)
        if not pending:
            break
        previous = current
    if pending and previous is not None and (not picked or picked[-1][0] != previous[0]):
        picked.append(previous)
    return [frame for _, frame in picked]


def _duration_s(container: InputContainer, stream: VideoStream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_VIDEO_PIXELS:
        raise MediaError(
            "too_many_pixels",
            f"video frames are {width}x{height}, more than {MAX_VIDEO_PIXELS} pixels; publish a 4K or smaller clip",
        )


def _timed_frames(container: InputContainer, stream: VideoStream) -> Iterator[tuple[float, av.VideoFrame]]:
    start, rate = stream.start_time or 0, float(stream.average_rate or 25)
    for index, frame in enumerate(container.decode(stream)):
        if index >= MAX_DECODED_FRAMES:
            raise MediaError(
                "too_many_frames",
                f"reaching the sample times took more than {MAX_DECODED_FRAMES} decoded frames "
                "(over 60 fps); re-encode the clip at 60 fps or less",
            )
        _check_size(frame.width, frame.height)
        pts, time_base = frame.pts, frame.time_base or stream.time_base
        yield (float((pts - start) * time_base) if pts is not None and time_base else index / rate), frame


def _model_input(frame: av.VideoFrame) -> ImageArray:
    image = Image.fromarray(frame.to_ndarray(format="rgb24"))
    if frame.rotation:
        image = image.rotate(frame.rotation, expand=True)
    return to_model_input(image)


def _decode_samples(data: bytes, count: int, max_seconds: float) -> list[ImageArray]:
    # Tags are never used: one that is not UTF-8 must not cost the clip.
    with av.open(
        io.BytesIO(data), mode="r", format=container_format(data), metadata_errors="replace"
    ) as container:
        if not container.streams.video:
            raise MediaError("undecodable_video", "the file has no video stream; check the video URI")
        stream = container.streams.video[0]
        if stream.codec_context is None:
            raise MediaError("undecodable_video", "FFmpeg has no decoder for the video stream's codec")
        _check_size(stream.codec_context.width, stream.codec_context.height)
        window_s = min(_duration_s(container, stream) or max_seconds, max_seconds)
        frames = nearest_frames(_timed_frames(container, stream), sample_times(window_s, count))
        return [_model_input(frame) for frame in frames]


def sample_frames(data: bytes, count: int = MAX_FRAMES, max_seconds: float = MAX_VIDEO_SECONDS) -> ImageArray:
    """Decode up to ``count`` frames spread evenly over the clip's first ``min(duration, max_seconds)`` s.

    Decoding stops one frame after the last sample time; display rotation is applied.

    Args:
        data: An MP4/QuickTime or Matroska/WebM file.
        count: Most frames returned; fewer when the clip has fewer frames.
        max_seconds: Only this many seconds from the start are considered.

    Returns:
        uint8 array of shape (n, 224, 224, 3) with 1 <= n <= count, in presentation order.

    Raises:
        MediaError: ``undecodable_video`` (not a supported container, no video stream, corrupt, no frame),
            ``too_many_pixels`` (frames larger than 4K) or ``too_many_frames`` (frame rate above 60 fps).
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    try:
        arrays = _decode_samples(data, count, max_seconds)
    except MediaError:
        raise
    except Exception as exc:
        # PyAV turns damaged files into FFmpegError but also into AttributeError, OverflowError and the
        # like; whatever a clip's bytes cause, it is that clip's problem, never the caller's.
        raise MediaError(
            "undecodable_video",
            f"FFmpeg cannot decode the clip ({type(exc).__name__}: {exc}); check the video URI",
        ) from exc
    if not arrays:
        raise MediaError(
            "undecodable_video", "the video stream holds no decodable frame; check the video URI"
        )
    return np.stack(arrays)
