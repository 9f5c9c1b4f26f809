"""The command line's offline commands (the look-ups are tested against the real stack in tests/integration)."""

import json
from pathlib import Path

from click.testing import CliRunner

from stream.cli import main
from stream.config import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "amazon"


def test_import_amazon_writes_valid_event_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [
        "import", "amazon", "--meta", str(FIXTURES / "meta_Toys_and_Games.jsonl"),
        "--reviews", str(FIXTURES / "Toys_and_Games.jsonl"), "--out", str(tmp_path),
    ])

    assert result.exit_code == 0, result.output
    listings = [json.loads(line) for line in (tmp_path / "listings.jsonl").read_text().splitlines()]
    assert listings and all(event["type"] == "listing.upserted" for event in listings)
    assert "skipped" in result.output


def test_replay_refuses_a_file_that_is_not_json_lines(tmp_path: Path) -> None:
    bad = tmp_path / "events.jsonl"
    bad.write_text('{"type": "listing.upserted"}\nnot json\n')

    result = CliRunner().invoke(main, ["replay", str(bad)])

    assert result.exit_code == 1
    assert f"{bad}:2 is not valid JSON" in result.output
