"""Running a batch of texts as groups of similar length, so little of the encoder's work is padding (pure)."""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from stream.encoders.sessions import Runner


def length_groups(lengths: Sequence[int], size: int) -> list[npt.NDArray[np.intp]]:
    """Item indices sorted by length (stable), cut into consecutive groups of at most ``size``.

    >>> [group.tolist() for group in length_groups([5, 2, 9, 2], 2)]
    [[1, 3], [0, 2]]
    """
    if size < 1:
        raise ValueError(f"group size must be at least 1, got {size}")
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[start : start + size] for start in range(0, len(order), size)]


def padded(token_ids: Sequence[Sequence[int]], pad_id: int) -> dict[str, npt.NDArray[np.int64]]:
    """``input_ids`` and ``attention_mask`` of the sequences, right-padded to the longest of them."""
    width = max(len(ids) for ids in token_ids)
    input_ids = np.full((len(token_ids), width), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(token_ids), width), dtype=np.int64)
    for row, ids in enumerate(token_ids):
        input_ids[row, : len(ids)] = ids
        attention_mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def embed_in_length_groups(
    runner: Runner, token_ids: Sequence[Sequence[int]], pad_id: int, size: int
) -> npt.NDArray[np.float32]:
    """The runner's vectors of every sequence, in input order, computed in ``length_groups`` of ``size``.

    On a CPU a batch of 32 listing texts padded to its longest spends about a third of its work on padding,
    and small batches keep the activations in cache: groups of 4 embed ~1.7x as many texts per CPU second.
    """
    groups = length_groups([len(ids) for ids in token_ids], size)
    vectors = [runner(padded([token_ids[index] for index in group], pad_id)) for group in groups]
    ordered = np.empty((len(token_ids), vectors[0].shape[1]), dtype=np.float32)
    for group, rows in zip(groups, vectors, strict=True):
        ordered[group] = rows
    return ordered
