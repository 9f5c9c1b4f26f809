"""The export gate's rule on hand-written reports: what counts as a loss, which baselines, the refusal."""

from pathlib import Path
from typing import Any

from stream.train.gate import Comparison, Verdict, comparisons, format_table, refusal


def _scores(recall: float, queries: int) -> dict[str, float]:
    return {"recall@1": recall, "mrr": recall, "queries": float(queries)}


def _report(fusion: float, text: float, query_fusion: float = 0.5) -> dict[str, Any]:
    """An evaluate() report of 20 listing queries and 4 text queries."""
    singles = {"text": text, "text_multilingual": 0.5, "image": 0.3, "video": 0.2, "reviews": 0.1}
    listing = {name: _scores(value, 20) for name, value in singles.items()}
    return {
        "listing_to_listing": listing | {"early_concat": _scores(0.6, 20), "fusion": _scores(fusion, 20)},
        "query_to_listing": {"text": _scores(0.5, 4), "fusion": _scores(query_fusion, 4)},
    }


def test_one_query_behind_is_within_tolerance_and_two_are_a_loss() -> None:
    one, two = (
        Comparison("listing_to_listing", "text", 0.9, 0.95, 20),
        Comparison("listing_to_listing", "text", 0.9, 1.0, 20),
    )

    assert (one.behind, one.lost) == (1, False)
    assert (two.behind, two.lost) == (2, True)
    assert Comparison("listing_to_listing", "text", 1.0, 0.9, 20).behind == -2


def test_every_single_modality_and_early_concat_are_compared_on_listing_retrieval() -> None:
    checks = comparisons(_report(fusion=0.8, text=0.9), served=None)

    assert [(c.task, c.baseline) for c in checks] == [
        ("listing_to_listing", name)
        for name in ("text", "text_multilingual", "image", "video", "reviews", "early_concat")
    ]
    assert [c.baseline for c in checks if c.lost] == ["text"]


def test_the_served_model_is_compared_on_listing_and_query_retrieval() -> None:
    checks = comparisons(_report(fusion=0.8, text=0.5, query_fusion=0.25), _report(0.85, 0.5, 0.75))

    served = [c for c in checks if c.baseline == "served"]
    assert [(c.task, c.behind, c.lost) for c in served] == [
        ("listing_to_listing", 1, False),
        ("query_to_listing", 2, True),
    ]


def test_the_table_marks_each_lost_comparison() -> None:
    table = format_table(comparisons(_report(fusion=0.8, text=0.9), served=None)).splitlines()

    assert [line.split()[1] for line in table[1:] if line.endswith("LOST")] == ["text"]
    assert all(line.endswith("ok") for line in table[2:])


def test_the_refusal_names_each_lost_comparison_with_its_figures_and_the_override() -> None:
    checks = comparisons(_report(fusion=0.55, text=0.9, query_fusion=0.25), _report(0.7, 0.9, 0.75))
    verdict = Verdict(tuple(checks), Path("f.npz"), 0, 20, 5, "fusion-20260101-abcdef12", None)

    message = refusal(verdict, Path("run/gate.json"))

    assert "loses to text (listing->listing R@1 0.550 vs 0.900, 7 of 20 queries behind); " in message
    assert "; served (listing->listing R@1 0.550 vs 0.700, 3 of 20 queries behind); " in message
    assert "; served (query->listing R@1 0.250 vs 0.750, 2 of 4 queries behind) " in message
    assert message.count(" queries behind)") == 3  # early_concat, one query behind, is not a loss
    assert "--force" in message and "\n" not in message
