"""Digests, sources and the decision of what an upsert re-encodes, including properties over any listing."""

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.contracts.events import ListingEvent, Price
from stream.contracts.shapes import MAX_PHOTOS
from stream.features.changes import (
    INPUTS,
    Sources,
    digest,
    embedded_sources,
    input_digests,
    input_encoders,
    model_fingerprint,
    pixels_digest,
    to_encode,
)
from stream.features.text import text_of

ENCODERS = input_encoders(
    {m: f"{m}/1#x" for m in ("text_encoder", "text_multilingual_encoder", "image_encoder", "video_pooling")}
)
FAST = settings(max_examples=80, deadline=None)
WORDS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
URIS = st.lists(st.from_regex(r"https://m\.example/[a-z]{1,6}\.png", fullmatch=True), max_size=6, unique=True)
# The fields the text encoders read (stream.features.text.text_of), with values that change the text.
TEXT_FIELDS: dict[str, Any] = {
    "title": WORDS,
    "description": WORDS,
    "brand": WORDS,
    "categories": st.lists(WORDS, min_size=1, max_size=3).map(tuple),
    "attributes": st.dictionaries(
        st.from_regex(r"[a-z]{1,6}", fullmatch=True), WORDS, min_size=1, max_size=3
    ),
    "age_min_months": st.integers(0, 200),
    "age_max_months": st.integers(0, 200),
}
# Fields no encoder sees.
OTHER_FIELDS: dict[str, Any] = {
    "price": st.builds(Price, st.decimals(0, 10_000, places=2).map(Decimal), st.sampled_from(["EUR", "USD"])),
    "locale": st.sampled_from(["en-US", "de-DE", "zh-Hans-CN"]),
    "version": st.integers(1, 10**9),
    "event_id": st.uuids().map(str),
}


@st.composite
def listings(draw: st.DrawFn) -> ListingEvent:
    fields = {name: draw(st.one_of(st.none(), strategy)) for name, strategy in TEXT_FIELDS.items()}
    fields["title"] = fields["title"] or "toy"
    fields["categories"] = fields["categories"] or ()
    fields["attributes"] = fields["attributes"] or {}
    return ListingEvent(
        event_id="e",
        type="listing.upserted",
        listing_id="toy-1",
        version=1,
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        images=tuple(draw(URIS)),
        videos=tuple(draw(URIS)[:1]),
        **fields,
    )


def sources_of(event: ListingEvent) -> Sources:
    """The sources an upsert of ``event`` would store, every input arriving."""
    video = event.videos[0] if event.videos else None
    return Sources.of(input_digests(text_of(event), event.images, video), ENCODERS)


@FAST
@given(listings(), st.data())
def test_a_change_to_a_field_no_encoder_sees_re_encodes_nothing(
    event: ListingEvent, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(OTHER_FIELDS)))
    changed = dataclasses.replace(event, **{name: data.draw(OTHER_FIELDS[name])})

    assert to_encode(sources_of(event), sources_of(changed)) == frozenset()


@FAST
@given(listings(), st.data())
def test_any_change_to_the_text_re_encodes_the_text_and_only_the_text(
    event: ListingEvent, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(TEXT_FIELDS)))
    changed = dataclasses.replace(event, **{name: data.draw(TEXT_FIELDS[name])})
    if text_of(changed) == text_of(event):
        return  # e.g. the same value drawn again, or an age bound that the range renders alike

    assert to_encode(sources_of(event), sources_of(changed)) == {"text"}


@FAST
@given(listings(), URIS, URIS)
def test_changed_media_re_encode_exactly_their_input(
    event: ListingEvent, photos: list[str], video: list[str]
) -> None:
    changed = dataclasses.replace(event, images=tuple(photos), videos=tuple(video[:1]))
    expected = set()
    if tuple(photos[:MAX_PHOTOS]) != event.images[:MAX_PHOTOS] and photos:
        expected.add("image")
    if tuple(video[:1]) != event.videos and video:
        expected.add("video")

    assert to_encode(sources_of(event), sources_of(changed)) == expected


@FAST
@given(
    listings(),
    st.sampled_from(["text_encoder", "text_multilingual_encoder", "image_encoder", "video_pooling"]),
)
def test_a_changed_encoder_re_encodes_the_inputs_it_reads(event: ListingEvent, model: str) -> None:
    models = {
        m: f"{m}/1#x" for m in ("text_encoder", "text_multilingual_encoder", "image_encoder", "video_pooling")
    }
    stored = sources_of(event)
    wanted = Sources.of(stored.digests, input_encoders({**models, model: f"{model}/2#y"}))
    readers = {
        "text_encoder": {"text"},
        "text_multilingual_encoder": {"text"},
        "image_encoder": {"image", "video"},
    }

    assert to_encode(stored, wanted) == readers.get(model, {"video"}) & set(stored.digests)


@FAST
@given(listings())
def test_a_new_listing_encodes_every_input_it_has(event: ListingEvent) -> None:
    wanted = sources_of(event)

    assert to_encode(None, wanted) == set(wanted.digests)
    assert "text" in wanted.digests


@FAST
@given(st.lists(st.binary(max_size=8), max_size=4), st.lists(st.binary(max_size=8), max_size=4))
def test_digests_tell_sequences_apart(a: list[bytes], b: list[bytes]) -> None:
    assert (digest(*a) == digest(*b)) == (a == b)


def test_pixels_digest_reads_values_and_shape() -> None:
    photo = np.zeros((2, 2, 3), np.uint8)

    assert pixels_digest(photo) == pixels_digest(photo.copy())
    assert pixels_digest(photo) != pixels_digest(photo.reshape(1, 4, 3))
    photo[0, 0, 0] = 1
    assert pixels_digest(photo) != pixels_digest(np.zeros((2, 2, 3), np.uint8))


def test_photos_past_the_cap_are_not_an_input() -> None:
    uris = [f"https://m.example/{i}.png" for i in range(MAX_PHOTOS + 2)]

    assert input_digests("t", uris, None) == input_digests(
        "t", [*uris[:MAX_PHOTOS], "https://m.example/x.png"], None
    )


def test_a_photo_that_failed_is_left_out_so_the_next_upsert_fetches_it_again() -> None:
    wanted = Sources.of(input_digests("t", ["https://a", "https://b"], "https://v"), ENCODERS)
    fetched = input_digests("t", ["https://b"], None)

    written = embedded_sources(wanted, frozenset({"image", "video"}), fetched)

    assert written.digests == {"text": wanted.digests["text"], "image": digest("https://b")}
    assert set(written.encoders) == {"text", "image"}
    assert to_encode(written, wanted) == {"image", "video"}


def test_inputs_not_encoded_keep_the_wanted_digest() -> None:
    wanted = Sources.of(input_digests("t", ["https://a"], "https://v"), ENCODERS)

    assert embedded_sources(wanted, frozenset({"text"}), input_digests("t", [], None)) == wanted


def test_sources_survive_json_and_garbage_reads_as_none() -> None:
    sources = Sources.of(input_digests("t", ["https://a"], None), ENCODERS)

    assert Sources.from_json(sources.to_json()) == sources
    for garbage in ("", "[]", '{"digests": 1, "encoders": {}}', '{"digests": {}}', "{"):
        assert Sources.from_json(garbage) is None


def test_the_fingerprint_changes_with_version_and_parameters() -> None:
    base = model_fingerprint("text_encoder", "1", {"max_tokens": "256"})

    assert base.startswith("text_encoder/1#")
    assert base == model_fingerprint("text_encoder", "1", {"max_tokens": "256"})
    assert base != model_fingerprint("text_encoder", "2", {"max_tokens": "256"})
    assert base != model_fingerprint("text_encoder", "1", {"max_tokens": "128"})
    assert set(ENCODERS) == set(INPUTS)


def test_the_thread_count_is_not_part_of_the_fingerprint() -> None:
    one = model_fingerprint("text_encoder", "1", {"max_tokens": "256", "intra_op_threads": "1"})

    assert one == model_fingerprint("text_encoder", "1", {"max_tokens": "256", "intra_op_threads": "4"})
    assert one == model_fingerprint("text_encoder", "1", {"max_tokens": "256"})
