"""Java and Maven for the local broker: version checks and jars assembled from Maven Central."""

import re
import shutil
import subprocess
from pathlib import Path

from stream.errors import MissingToolError
from stream.stack import process

MIN_JAVA = 17
MARKER = ".complete"
JAVA_HINT = "install a JDK 17+ (Debian: `apt-get install -y openjdk-17-jre-headless`)"


def parse_java_major(version_output: str) -> int | None:
    """Return the major version from ``java -version`` output (``"1.8.0_402"`` -> 8), or None."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def check_java() -> str:
    """Return the path of a Java 17+ ``java``.

    Raises:
        MissingToolError: java is absent or older than 17.
    """
    java = shutil.which("java")
    if java is None:
        raise MissingToolError(f"the local Kafka broker needs `java` on PATH; {JAVA_HINT}")
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    major = parse_java_major(result.stderr + result.stdout)
    if major is None or major < MIN_JAVA:
        raise MissingToolError(
            f"the local Kafka broker needs Java {MIN_JAVA}+, but `{java} -version` reports {major}; {JAVA_HINT}"
        )
    return java


def check_mvn() -> str:
    """Return the path of ``mvn``.

    Raises:
        MissingToolError: Maven is absent.
    """
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MissingToolError(
            "the local Kafka broker is assembled from Maven Central and needs `mvn` on PATH; "
            "install Maven 3.8+ (Debian: `apt-get install -y maven`)"
        )
    return mvn


def lib_stamp(properties: dict[str, str]) -> str:
    """Return the text the marker file holds for a lib folder built with ``properties``."""
    return "".join(f"{key}={value}\n" for key, value in sorted(properties.items()))


def lib_is_complete(lib: Path, properties: dict[str, str]) -> bool:
    """Return whether ``lib`` holds a finished build for exactly these Maven ``properties``."""
    marker = lib / MARKER
    return marker.is_file() and marker.read_text() == lib_stamp(properties)


def assemble_lib(pom: bytes, lib: Path, properties: dict[str, str], log_file: Path) -> None:
    """Copy a pom's runtime dependencies into ``lib`` (``-Dkafka.lib``), then write the marker.

    Maven runs in ``lib``'s sibling ``build/`` folder, so no ``target/`` lands in the source tree;
    ``~/.m2`` caches the jars between builds.

    Raises:
        MissingToolError: Maven is absent.
        ServerStartError: Maven failed; the message quotes ``log_file``.
    """
    mvn = check_mvn()
    shutil.rmtree(lib, ignore_errors=True)
    build = lib.parent / "build"
    build.mkdir(parents=True, exist_ok=True)
    (build / "pom.xml").write_bytes(pom)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    defines = [f"-D{key}={value}" for key, value in {**properties, "kafka.lib": str(lib)}.items()]
    with log_file.open("wb") as log:
        code = subprocess.run(
            [mvn, "-B", "-q", "-f", "pom.xml", "package", *defines],
            cwd=build,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
    if code != 0:
        raise process.start_failure("kafka", log_file, f"jar download (mvn) failed with code {code}")
    shutil.rmtree(build, ignore_errors=True)
    (lib / MARKER).write_text(lib_stamp(properties))
