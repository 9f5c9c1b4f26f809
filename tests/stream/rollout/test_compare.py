"""Neighbour overlap and the comparison table."""

from stream.rollout.compare import format_table, overlap_at_k


def test_overlap_counts_shared_neighbours_among_the_first_k() -> None:
    assert overlap_at_k(list("abcdefghij"), list("abcdefghij")) == 1.0
    assert overlap_at_k(list("abcdefghij"), list("klmnopqrsa")) == 0.1
    assert overlap_at_k(["a", "b", "c"], ["c", "b", "a"], 2) == 0.5


def test_the_table_shows_both_versions_and_recall_when_measured() -> None:
    report = {"live_version": "fusion-a", "shadow_version": "fusion-b", "listings": 3, "overlap@10": 0.8}

    assert "Recall@1" not in format_table(report)
    table = format_table({**report, "recall@1": {"live": 0.9, "shadow": 0.95}}).splitlines()

    assert table[1].split() == ["version", "fusion-a", "fusion-b"]
    assert table[2].endswith("0.800") and "3 listings" in table[2]
    assert table[3].split()[-2:] == ["0.900", "0.950"]
