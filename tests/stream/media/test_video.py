"""Tests for stream/media/video.py on real clips written with PyAV."""

import io
from collections.abc import Iterator

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.contracts.shapes import IMAGE_SIZE
from stream.errors import MediaError
from stream.media import video
from stream.media.video import nearest_frames, sample_frames, sample_times

# Frame i is a flat grey of level BASE + STEP * i; lossless H.264 keeps it within 1.
BASE, STEP = 10, 4


def make_clip(
    frames: int,
    fps: int,
    size: tuple[int, int] = (64, 48),
    fmt: str = "mp4",
    codec: str = "libx264",
    rotation: int = 0,
    title: str | None = None,
) -> bytes:
    """A clip whose frame ``i`` is a flat grey ``BASE + STEP * i`` (see :func:`frame_indices`)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as container:
        if title is not None:
            container.metadata["title"] = title
        options = {"crf": "0", "preset": "ultrafast"} if codec == "libx264" else {}
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for index in range(frames):
            pixels = np.full((size[1], size[0], 3), BASE + STEP * index, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def frame_indices(frames: np.ndarray) -> list[int]:
    """Recover which frames of a :func:`make_clip` clip were sampled."""
    return [round((float(frame.mean()) - BASE) / STEP) for frame in frames]


def test_sample_times_are_slice_centres() -> None:
    assert sample_times(2.0, 4) == [0.25, 0.75, 1.25, 1.75]


def test_nearest_frames_picks_the_nearest_and_keeps_each_frame_once() -> None:
    frames = [(index / 4, index) for index in range(4)]
    assert nearest_frames(frames, sample_times(1.0, 8)) == [0, 1, 2, 3]
    assert nearest_frames(frames, [0.1, 0.2, 0.9]) == [0, 1, 3]


def test_nearest_frames_stops_reading_one_frame_after_the_last_target() -> None:
    def timed() -> Iterator[tuple[float, int]]:
        for index in range(100):
            if index > 6:
                raise AssertionError(f"frame {index} was decoded although no target needed it")
            yield index / 10, index

    assert nearest_frames(timed(), [0.1, 0.5]) == [1, 5]


def test_nearest_frames_gives_late_targets_the_last_frame() -> None:
    assert nearest_frames([(0.0, "a"), (0.1, "b")], [0.05, 3.0, 4.0]) == ["a", "b"]
    assert nearest_frames([], [1.0]) == []


def test_samples_are_spread_over_the_whole_clip() -> None:
    frames = sample_frames(make_clip(frames=12, fps=12))
    assert frames.shape == (8, IMAGE_SIZE, IMAGE_SIZE, 3)
    assert frames.dtype == np.uint8
    assert frame_indices(frames) == [1, 2, 4, 5, 7, 8, 10, 11]


def test_a_clip_with_fewer_frames_than_asked_gives_each_frame_once() -> None:
    assert frame_indices(sample_frames(make_clip(frames=3, fps=3), count=8)) == [0, 1, 2]


def test_only_the_first_max_seconds_are_considered() -> None:
    frames = sample_frames(make_clip(frames=60, fps=10), count=4, max_seconds=2.0)
    assert frame_indices(frames) == [2, 7, 12, 17]


def test_webm_clips_decode() -> None:
    frames = sample_frames(make_clip(frames=6, fps=6, fmt="webm", codec="libvpx-vp9"), count=3)
    assert frames.shape == (3, IMAGE_SIZE, IMAGE_SIZE, 3)


def test_display_rotation_is_applied() -> None:
    size, half = (64, 32), 32
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=1, options={"crf": "0"})
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.set_display_rotation(90)  # counter-clockwise
        pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        pixels[:, :half] = 255  # white left half
        container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode(None))
    (frame,) = sample_frames(buffer.getvalue())
    # Turned counter-clockwise the clip is portrait with the white half at the bottom.
    assert frame[:100].mean() < 20
    assert frame[124:].mean() > 235


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage" * 100,
        b"#EXTM3U\n#EXTINF:1,\nfile:///etc/hostname\n",
        b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64,
    ],
    ids=["empty", "garbage", "hls-playlist", "mp4-header-only"],
)
def test_bytes_that_are_no_supported_clip_are_undecodable(data: bytes) -> None:
    with pytest.raises(MediaError) as caught:
        sample_frames(data)
    assert caught.value.reason == "undecodable_video"


def test_a_truncated_clip_is_undecodable() -> None:
    data = make_clip(frames=12, fps=12)
    with pytest.raises(MediaError) as caught:
        sample_frames(data[: len(data) // 2])
    assert caught.value.reason == "undecodable_video"


def test_a_file_without_video_is_undecodable() -> None:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8000)
        samples = np.zeros((1, 1024), dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(MediaError, match="no video stream"):
        sample_frames(buffer.getvalue())


def test_frames_above_the_pixel_cap_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(video, "MAX_VIDEO_PIXELS", 64 * 48 - 1)
    with pytest.raises(MediaError, match="64x48") as caught:
        sample_frames(make_clip(frames=2, fps=2))
    assert caught.value.reason == "too_many_pixels"


def test_decoding_stops_at_the_frame_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(video, "MAX_DECODED_FRAMES", 5)
    data = make_clip(frames=12, fps=12)
    assert frame_indices(sample_frames(data, count=1, max_seconds=0.5)) == [3]  # 0.25 s needs frames 0-3
    with pytest.raises(MediaError) as caught:
        sample_frames(data, count=8)
    assert caught.value.reason == "too_many_frames"


def test_count_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        sample_frames(make_clip(frames=2, fps=2), count=0)


def test_a_clip_whose_metadata_tag_is_not_utf8_still_decodes() -> None:
    data = make_clip(frames=6, fps=6, title="TITLEMARK").replace(b"TITLEMARK", b"\xff\xfe\xfdLEMARK")
    assert sample_frames(data, count=3).shape == (3, IMAGE_SIZE, IMAGE_SIZE, 3)  # was UnicodeDecodeError


def test_a_stream_of_an_unknown_codec_is_undecodable() -> None:
    data = make_clip(frames=6, fps=6).replace(b"avc1", b"zzzz")
    with pytest.raises(MediaError) as caught:  # the stream has no codec context: it was AttributeError
        sample_frames(data)
    assert caught.value.reason == "undecodable_video"


FUZZ_CLIP = make_clip(frames=6, fps=6, title="toy")


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(FUZZ_CLIP) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_a_mutated_clip_decodes_or_fails_as_a_media_error(changes: list[tuple[int, int]]) -> None:
    data = bytearray(FUZZ_CLIP)
    for offset, value in changes:
        data[offset] = value
    try:
        frames = sample_frames(bytes(data))
    except MediaError:
        return
    assert frames.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE, 3)
