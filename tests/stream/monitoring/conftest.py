"""A real Prometheus with the repository's rules, scraping ports nothing listens on."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.config import Settings
from stream.stack import process, prometheus_server


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of a freshly started local Prometheus; stopped afterwards."""
    run_dir: Path = tmp_path_factory.mktemp("prometheus-run")
    settings = Settings(
        run_dir=run_dir,
        prometheus_port=process.free_port(),
        worker_web_port=process.free_port(),
        triton_metrics_port=process.free_port(),
        startup_timeout_s=60,
    )
    prometheus_server.start(settings, lambda line: None)
    yield settings
    prometheus_server.stop(settings)
