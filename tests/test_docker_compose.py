"""Tests for docker-compose.yml: valid for docker-compose, and holding the services toyfuse needs."""

import json
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from stream.config import REPO_ROOT, Settings
from stream.stack.triton_server import MODEL_CONTROL

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The parsed compose file."""
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def test_docker_compose_config_accepts_the_file() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (Debian: apt-get install -y docker-compose)")
    for profile in ("gpu", "cpu"):
        result = subprocess.run(
            [binary, "-f", str(COMPOSE_FILE), "--profile", profile, "config", "-q"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("service", "image"),
    [
        ("kafka", "apache/kafka:4.1.1"),
        ("kafka-init", "apache/kafka:4.1.1"),
        ("redis", "redis:8.2"),
        ("worker", "toyfuse-worker:latest"),
    ],
)
def test_service_images(compose: dict[str, Any], service: str, image: str) -> None:
    assert compose["services"][service]["image"] == image


@pytest.mark.parametrize(
    ("service", "repository"), [("prometheus", "prom/prometheus:"), ("grafana", "grafana/grafana:")]
)
def test_monitoring_images(compose: dict[str, Any], service: str, repository: str) -> None:
    assert compose["services"][service]["image"].startswith(repository)


def test_triton_builds_on_the_ngc_image_for_gpu_and_cpu(compose: dict[str, Any]) -> None:
    gpu, cpu = compose["services"]["triton"], compose["services"]["triton-cpu"]
    dockerfile = REPO_ROOT / gpu["build"]["dockerfile"]
    assert dockerfile.read_text().count("FROM nvcr.io/nvidia/tritonserver:24.10-py3") == 1
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert "deploy" not in cpu and cpu["networks"]["default"]["aliases"] == ["triton"]
    assert (gpu["profiles"], cpu["profiles"]) == (["gpu"], ["cpu"])
    assert "./triton_models:/models:ro" in gpu["volumes"]


def test_triton_in_compose_lets_workers_reload_a_model_as_the_local_stack_does(
    compose: dict[str, Any],
) -> None:
    command = compose["services"]["triton"]["command"]
    wanted = [f"{flag}={value}" for flag, value in zip(MODEL_CONTROL[::2], MODEL_CONTROL[1::2], strict=True)]
    assert [option for option in command if option in wanted] == wanted


def test_kafka_init_creates_the_four_settings_topics(compose: dict[str, Any]) -> None:
    script = compose["services"]["kafka-init"]["command"][0]
    settings = Settings()
    for topic in (
        settings.listings_topic,
        settings.reviews_topic,
        settings.embeddings_topic,
        settings.deadletter_topic,
    ):
        assert topic in script
    assert "--partitions 4" in script


def test_worker_env_names_are_settings_fields(compose: dict[str, Any]) -> None:
    environment = compose["services"]["worker"]["environment"]
    fields = set(Settings.model_fields)
    assert environment["TOYFUSE_KAFKA_HOST"] == "kafka"
    assert all(name.removeprefix("TOYFUSE_").lower() in fields for name in environment)
    assert (REPO_ROOT / compose["services"]["worker"]["build"] / "Dockerfile").is_file()


def test_prometheus_scrapes_the_worker_and_triton(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((REPO_ROOT / "monitoring" / "prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets["toyfuse-worker"] == [f"worker:{Settings().worker_web_port}"]
    assert targets["triton"] == ["triton:8002"]
    assert (
        "./monitoring/prometheus.yml:/etc/prometheus/prometheus.yml:ro"
        in compose["services"]["prometheus"]["volumes"]
    )


def test_prometheus_loads_the_mounted_rules(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((REPO_ROOT / "monitoring" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["rules/*.yml"]  # relative to the config file, in the repo and container
    assert sorted((REPO_ROOT / "monitoring").glob(config["rule_files"][0]))
    volumes = compose["services"]["prometheus"]["volumes"]
    assert "./monitoring/rules:/etc/prometheus/rules:ro" in volumes


def test_grafana_provisions_the_datasource_and_the_dashboards_folder(compose: dict[str, Any]) -> None:
    grafana = REPO_ROOT / "monitoring" / "grafana"
    provider = yaml.safe_load((grafana / "provisioning" / "dashboards" / "toyfuse.yml").read_text())
    service = compose["services"]["grafana"]
    mount = next(v for v in service["volumes"] if v.startswith("./monitoring/grafana/dashboards"))
    dashboards_path = mount.split(":")[1]
    assert dashboards_path == provider["providers"][0]["options"]["path"]
    assert "./monitoring/grafana/provisioning:/etc/grafana/provisioning:ro" in service["volumes"]
    home = service["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(dashboards_path + "/")
    dashboard = json.loads((grafana / "dashboards" / home.removeprefix(dashboards_path + "/")).read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert any("toyfuse_events_processed_total" in expr for expr in exprs)
    datasource = yaml.safe_load((grafana / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090" in compose["services"]["prometheus"]["ports"]
