"""Tests for stream/stack/kafka_server.py: broker configuration, cluster ids and the java command line."""

import base64
from pathlib import Path

from stream.config import Settings
from stream.stack import kafka_server
from stream.stack.process import ServerStatus


def parse_properties(text: str) -> dict[str, str]:
    """Parse ``key=value`` lines the way Java's Properties would (no comments in ours)."""
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_server_properties_single_node_kraft_on_settings_ports(tmp_path: Path) -> None:
    settings = Settings(kafka_port=29092, kafka_controller_port=29093, topic_partitions=6)
    props = parse_properties(kafka_server.render_server_properties(settings, tmp_path / "data"))

    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:29093"
    assert "controller.quorum.voters" not in props
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["advertised.listeners"] == props["listeners"]
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["num.partitions"] == "6"


def test_server_properties_give_internal_topics_one_replica(tmp_path: Path) -> None:
    props = parse_properties(kafka_server.render_server_properties(Settings(), tmp_path))
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "default.replication.factor",
        "min.insync.replicas",
    ):
        assert props[key] == "1", key


def test_new_cluster_id_is_a_url_safe_uuid() -> None:
    ids = {kafka_server.new_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    for cluster_id in ids:
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_topic_names_are_the_four_settings_topics() -> None:
    settings = Settings(listings_topic="a", reviews_topic="b", embeddings_topic="c", deadletter_topic="d")
    assert kafka_server.topic_names(settings) == ["a", "b", "c", "d"]


def test_java_command_uses_heap_logging_config_and_lib_classpath(tmp_path: Path) -> None:
    settings = Settings(run_dir=tmp_path, kafka_heap="300m")
    command = kafka_server.java_command(
        "/usr/bin/java", settings, ["kafka_server.Kafka", "server.properties"]
    )
    base = tmp_path.resolve() / "kafka"

    assert command[0] == "/usr/bin/java"
    assert "-Xmx300m" in command
    assert f"-Dlog4j2.configurationFile={base / 'log4j2.properties'}" in command
    assert command[command.index("-cp") + 1] == f"{base / 'lib'}/*"
    assert command[-2:] == ["kafka_server.Kafka", "server.properties"]


def test_write_config_puts_files_in_the_run_dir(tmp_path: Path) -> None:
    settings = Settings(run_dir=tmp_path / "run")
    properties = kafka_server.write_config(settings)
    assert properties == (tmp_path / "run" / "kafka" / "server.properties").resolve()
    assert "rootLogger.level = INFO" in (properties.parent / "log4j2.properties").read_text()


def test_status_of_a_stopped_broker(tmp_path: Path) -> None:
    settings = Settings(run_dir=tmp_path, kafka_port=9)
    assert kafka_server.status(settings) == ServerStatus("kafka", None, "127.0.0.1:9", False, "not answering")
