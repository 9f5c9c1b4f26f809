"""Change-aware re-embedding, pure: what each stored vector came from, and what an upsert must re-encode.

Each encoder input of a listing has a digest: the composed text (exactly what the text encoders see),
the URIs of its embedded photos, the URI of its embedded video. Media URIs are taken as content
addresses: an upsert whose photo URIs are those already embedded does not fetch them again, so a seller
who replaces a photo publishes it under a new URI. The shared encoder-output cache, by contrast, keys
photos and frames by the digest of their decoded pixels, so new content behind an old URI is encoded
afresh there. A changed encoder (its Triton version or parameters) re-encodes its input.
"""

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray

from stream.contracts.shapes import MAX_PHOTOS

Input = Literal["text", "image", "video"]
INPUTS: tuple[Input, ...] = get_args(Input)
# The stored vectors computed from each input (the fused vector is computed from all of them).
VECTORS_OF: dict[Input, tuple[str, ...]] = {
    "text": ("text", "text_multilingual"),
    "image": ("image", "photos"),
    "video": ("video",),
}
# The Triton models whose output each input's vectors are.
ENCODERS_OF: dict[Input, tuple[str, ...]] = {
    "text": ("text_encoder", "text_multilingual_encoder"),
    "image": ("image_encoder",),
    "video": ("image_encoder", "video_pooling"),
}
# Config parameters that set how fast a model runs, never what it returns: left out of its fingerprint, so
# that giving a model more or fewer threads re-encodes nothing.
RUNTIME_PARAMETERS = frozenset({"intra_op_threads"})


def digest(*parts: str | bytes) -> str:
    """SHA-256 (hex) of ``parts``, each length-prefixed so that no two sequences collide (pure).

    >>> digest("a", "bc") != digest("ab", "c")
    True
    """
    hasher = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        hasher.update(len(data).to_bytes(8, "little") + data)
    return hasher.hexdigest()


def pixels_digest(pixels: NDArray[np.uint8]) -> str:
    """Digest of decoded pixels (one photo, or a video's frames): the image encoder's very input (pure)."""
    array = np.ascontiguousarray(pixels)
    return digest(str(array.dtype), json.dumps(list(array.shape)), array.tobytes())


def input_digests(text: str, photo_uris: Sequence[str], video_uri: str | None) -> dict[Input, str]:
    """Digest of each encoder input present: the text always, photos and video when there are any (pure).

    Args:
        text: the composed text (:func:`stream.features.text.text_of`).
        photo_uris: the photos' URIs in order; those past ``MAX_PHOTOS`` are never embedded, so ignored.
        video_uri: the first video's URI, or None.
    """
    digests: dict[Input, str] = {"text": digest(text)}
    if photo_uris:
        digests["image"] = digest(*photo_uris[:MAX_PHOTOS])
    if video_uri is not None:
        digests["video"] = digest(video_uri)
    return digests


def model_fingerprint(model: str, version: str, parameters: Mapping[str, str]) -> str:
    """What identifies a served encoder: its name, version and config parameters but the
    :data:`RUNTIME_PARAMETERS`, hashed (pure).

    >>> model_fingerprint("text_encoder", "1", {"max_tokens": "256"})[:14]
    'text_encoder/1'
    """
    outputs_depend_on = {key: value for key, value in parameters.items() if key not in RUNTIME_PARAMETERS}
    return f"{model}/{version}#{digest(json.dumps(outputs_depend_on, sort_keys=True))[:12]}"


def input_encoders(models: Mapping[str, str]) -> dict[Input, str]:
    """The fingerprint of the encoders behind each input, from each model's fingerprint (pure).

    Raises:
        KeyError: ``models`` lacks one of the encoders of ``ENCODERS_OF``.
    """
    return {name: " ".join(models[model] for model in ENCODERS_OF[name]) for name in INPUTS}


@dataclass(frozen=True)
class Sources:
    """What a record's vectors were computed from: per input present, its digest and its encoders."""

    digests: Mapping[Input, str]
    encoders: Mapping[Input, str]

    @classmethod
    def of(cls, digests: Mapping[Input, str], encoders: Mapping[Input, str]) -> "Sources":
        """The sources of the inputs in ``digests``, each with its entry of ``encoders``."""
        return cls(dict(digests), {name: encoders[name] for name in digests})

    def to_json(self) -> str:
        """The JSON stored in the listing hash's ``sources`` field."""
        return json.dumps({"digests": dict(self.digests), "encoders": dict(self.encoders)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Sources | None":
        """Parse a stored ``sources`` field; None when it is not one (the record is then re-encoded)."""
        try:
            raw = json.loads(text)
            digests, encoders = raw["digests"], raw["encoders"]
        except (ValueError, TypeError, KeyError):
            return None
        if not (isinstance(digests, dict) and isinstance(encoders, dict)):
            return None
        return cls(
            {name: str(digests[name]) for name in INPUTS if name in digests},
            {name: str(encoders[name]) for name in INPUTS if name in encoders},
        )

    def same(self, other: "Sources | None", name: Input) -> bool:
        """Whether ``other`` computed input ``name`` from the same content with the same encoders."""
        return (
            other is not None
            and self.digests.get(name) == other.digests.get(name)
            and self.encoders.get(name) == other.encoders.get(name)
        )


def embedded_sources(wanted: Sources, encoded: frozenset[Input], fetched: Mapping[Input, str]) -> Sources:
    """The sources of the record an upsert writes (pure).

    Args:
        wanted: the upsert's inputs (:func:`input_digests` of the event, with the served encoders).
        encoded: the inputs it fetched and encoded (:func:`to_encode`); the others keep their vectors.
        fetched: :func:`input_digests` of what arrived of the encoded inputs: a photo or video that failed
            is left out of it, so that the next upsert tries it again.
    """
    digests = {
        name: digest
        for name in INPUTS
        if (digest := (fetched if name in encoded else wanted.digests).get(name)) is not None
    }
    return Sources.of(digests, wanted.encoders)


def to_encode(stored: Sources | None, wanted: Sources) -> frozenset[Input]:
    """The inputs an upsert must fetch and encode: those present whose content or encoders changed (pure).

    An input the upsert no longer has needs nothing: its vectors are simply left out.

    >>> sorted(to_encode(None, Sources({"text": "t"}, {"text": "e"})))
    ['text']
    """
    return frozenset(name for name in wanted.digests if not wanted.same(stored, name))
