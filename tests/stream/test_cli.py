"""The command line's offline commands and its errors (the look-ups are tested against the real stack in
tests/integration)."""

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from stream.cli import LAZY_COMMANDS, main
from stream.config import REPO_ROOT
from tests.conftest import free_port

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "amazon"


def test_import_amazon_writes_valid_event_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "import",
            "amazon",
            "--meta",
            str(FIXTURES / "meta_Toys_and_Games.jsonl"),
            "--reviews",
            str(FIXTURES / "Toys_and_Games.jsonl"),
            "--out",
            str(tmp_path),
        ],
    )

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


def _commands(command: click.Command, path: str = "toyfuse") -> Iterator[tuple[str, click.Command]]:
    """Every command of the tree under ``command``, with its command line."""
    yield path, command
    if isinstance(command, click.Group):
        context = click.Context(command)
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            assert sub is not None, f"{path} lists {name} but has no such command"
            yield from _commands(sub, f"{path} {name}")


def test_every_command_and_option_has_help() -> None:
    missing = []
    for path, command in _commands(main):
        missing += [] if command.help else [path]
        options = [param for param in command.params if isinstance(param, click.Option)]
        missing += [f"{path} {option.opts[0]}" for option in options if not option.help]

    assert missing == []


def test_the_summary_of_a_lazily_loaded_command_is_its_first_help_line() -> None:
    context = click.Context(main)
    for name, (_, summary) in LAZY_COMMANDS.items():
        command = main.get_command(context, name)
        assert command is not None and (command.help or "").splitlines()[0] == summary


def _fails_in_one_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ")
    return line


@pytest.mark.parametrize("command", [["get", "toy-0001"], ["similar", "toy-0001", "-k", "3"]])
def test_a_look_up_while_redis_is_down_says_which_settings_to_check(command: list[str]) -> None:
    result = CliRunner().invoke(main, command, env={"TOYFUSE_REDIS_PORT": str(free_port())})

    line = _fails_in_one_line(result)
    assert "Redis unreachable" in line and "TOYFUSE_REDIS_PORT" in line


@pytest.mark.parametrize("command", ["train", "eval"])
def test_train_and_eval_print_a_feature_service_error_in_one_line(command: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing.npz"

    result = CliRunner().invoke(main, [command, "--features", str(missing), "--out", str(tmp_path / "out")])

    assert f"cannot read cached features {missing}" in _fails_in_one_line(result)


def test_eval_wants_a_catalog_or_features() -> None:
    result = CliRunner().invoke(main, ["eval"])

    assert result.exit_code == 2
    assert "give at least one --catalog or --features" in result.output


def test_eval_refuses_two_sources_of_one_name(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "same.npz").touch()

    result = CliRunner().invoke(
        main,
        [
            "eval",
            "--features",
            str(tmp_path / "a" / "same.npz"),
            "--features",
            str(tmp_path / "b" / "same.npz"),
        ],
    )

    assert result.exit_code == 2
    assert "share a name" in result.output
