"""Single-node KRaft Kafka broker assembled from Maven Central jars."""

import asyncio
import base64
import subprocess
import uuid
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from stream.config import Settings
from stream.errors import ServerStartError
from stream.stack import java, process
from stream.stack.process import LOCALHOST, Launch, ServerStatus

NAME = "kafka"
FILES = process.ServerFiles(NAME, "logs/kafka.log")
folder, log_file, pid_file, stop = FILES.folder, FILES.log_file, FILES.pid_file, FILES.stop
READY_LINE = "Kafka Server started"
TOPIC_EXISTS = 36
PROBE_TIMEOUT_S = 5.0
JVM_OPTS = [
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
]
LOG4J2_PROPERTIES = """\
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""


def topic_names(settings: Settings) -> list[str]:
    """Return the four topics the stack creates."""
    return [
        settings.listings_topic,
        settings.reviews_topic,
        settings.embeddings_topic,
        settings.deadletter_topic,
    ]


def render_server_properties(settings: Settings, data_dir: Path) -> str:
    """Return ``server.properties`` for a single-node broker+controller on 127.0.0.1.

    Args:
        settings: Ports and partition count.
        data_dir: Folder of the broker's log segments and KRaft metadata.

    Returns:
        The file's text.
    """
    broker = f"{LOCALHOST}:{settings.kafka_port}"
    controller = f"{LOCALHOST}:{settings.kafka_controller_port}"
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": controller,
        "listeners": f"PLAINTEXT://{broker},CONTROLLER://{controller}",
        "advertised.listeners": f"PLAINTEXT://{broker},CONTROLLER://{controller}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": str(settings.topic_partitions),
        "auto.create.topics.enable": "true",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.cleaner.dedupe.buffer.size": "2097152",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "background.threads": "2",
    }
    return "".join(f"{key}={value}\n" for key, value in props.items())


def new_cluster_id() -> str:
    """Return a random Kafka cluster id (URL-safe base64 of a UUID, as ``StorageTool random-uuid`` prints)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def ensure_lib(settings: Settings, echo: Callable[[str], None]) -> Path:
    """Return the broker's ``lib/``, fetching its jars with Maven unless they are there for this version.

    Raises:
        MissingToolError: Maven is absent.
        ServerStartError: Maven failed; the message names its log.
    """
    lib = folder(settings) / "lib"
    properties = {"kafka.version": settings.kafka_version}
    if not java.lib_is_complete(lib, properties):
        echo(f"kafka: fetching Kafka {settings.kafka_version} jars with Maven into {lib}")
        pom = resources.files("stream.stack").joinpath("kafka-pom.xml").read_bytes()
        java.assemble_lib(pom, lib, properties, folder(settings) / "logs" / "mvn.log")
    return lib


def java_command(java_bin: str, settings: Settings, main: list[str]) -> list[str]:
    """Return the ``java`` command line that runs a Kafka main class with our classpath and logging."""
    base = folder(settings)
    return [
        java_bin,
        f"-Xmx{settings.kafka_heap}",
        f"-Xms{settings.kafka_heap}",
        *JVM_OPTS,
        f"-Dkafka.logs.dir={base / 'logs'}",
        f"-Dlog4j2.configurationFile={base / 'log4j2.properties'}",
        "-cp",
        str(base / "lib" / "*"),
        *main,
    ]


def write_config(settings: Settings) -> Path:
    """Write ``server.properties`` and ``log4j2.properties``; return the former."""
    base = folder(settings)
    (base / "logs").mkdir(parents=True, exist_ok=True)
    properties = base / "server.properties"
    properties.write_text(render_server_properties(settings, base / "data"))
    (base / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
    return properties


def format_storage(java_bin: str, settings: Settings, properties: Path) -> None:
    """Format the KRaft storage once (skipped when ``data/meta.properties`` exists).

    Raises:
        ServerStartError: StorageTool failed; the message names its log.
    """
    data = folder(settings) / "data"
    if (data / "meta.properties").is_file():
        return
    format_log = folder(settings) / "logs" / "format.log"
    main = [
        "kafka.tools.StorageTool",
        "format",
        "--standalone",
        "-t",
        new_cluster_id(),
        "-c",
        str(properties),
    ]
    with format_log.open("wb") as log:
        code = subprocess.run(
            java_command(java_bin, settings, main), stdout=log, stderr=subprocess.STDOUT, check=False
        ).returncode
    if code != 0:
        raise process.start_failure(NAME, format_log, f"storage format failed with code {code}")


async def _list_topics(settings: Settings) -> list[str]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=f"{LOCALHOST}:{settings.kafka_port}", request_timeout_ms=int(PROBE_TIMEOUT_S * 1000)
    )
    try:
        await admin.start()
        topics: list[str] = await admin.list_topics()
        return topics
    finally:
        await admin.close()


def list_topics(settings: Settings) -> list[str] | None:
    """Return the broker's topics, or None when it does not answer within a few seconds."""
    if not process.port_is_open(settings.kafka_port):
        return None
    try:
        return asyncio.run(asyncio.wait_for(_list_topics(settings), PROBE_TIMEOUT_S))
    except (KafkaError, OSError, TimeoutError):
        return None


def _log_says_started(settings: Settings, offset: int) -> bool:
    with log_file(settings).open("rb") as log:
        log.seek(offset)
        return READY_LINE.encode() in log.read()


def start(settings: Settings, echo: Callable[[str], None]) -> None:
    """Fetch jars if needed, write config, format storage once, start the broker and wait until ready.

    Raises:
        MissingToolError: java or mvn is missing.
        PortBusyError: A Kafka port is taken.
        ServerStartError: The broker died or was not ready in time.
    """
    java_bin = java.check_java()
    process.ensure_ports_free(
        NAME, {"kafka_port": settings.kafka_port, "kafka_controller_port": settings.kafka_controller_port}
    )
    ensure_lib(settings, echo)
    properties = write_config(settings)
    format_storage(java_bin, settings, properties)
    log = log_file(settings)
    offset = log.stat().st_size if log.exists() else 0
    launch = Launch(
        NAME,
        java_command(java_bin, settings, ["kafka.Kafka", str(properties)]),
        pid_file(settings),
        log,
        folder(settings),
    )
    proc = process.spawn(launch)
    process.wait_ready(
        proc,
        launch,
        lambda: _log_says_started(settings, offset) and list_topics(settings) is not None,
        settings.startup_timeout_s,
    )
    echo(f"kafka: up at {LOCALHOST}:{settings.kafka_port} (pid {proc.pid}, log {log})")


async def _create_topics(settings: Settings, names: list[str]) -> list[tuple[str, int]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=f"{LOCALHOST}:{settings.kafka_port}")
    topics = [NewTopic(name, settings.topic_partitions, 1) for name in names]
    try:
        await admin.start()
        response = await admin.create_topics(topics)
    finally:
        await admin.close()
    return [(error[0], error[1]) for error in response.topic_errors]


def ensure_topics(settings: Settings, echo: Callable[[str], None]) -> None:
    """Create the stack's topics that do not exist yet, each with ``topic_partitions`` partitions.

    Raises:
        ServerStartError: The broker refused to create a topic.
    """
    existing = list_topics(settings) or []
    missing = [name for name in topic_names(settings) if name not in existing]
    if not missing:
        return
    try:
        results = asyncio.run(_create_topics(settings, missing))
    except KafkaError as exc:
        raise ServerStartError(
            f"kafka did not create topics {', '.join(missing)}: {exc!r}; read {log_file(settings)}"
        ) from exc
    for topic, code in results:
        if code not in (0, TOPIC_EXISTS):
            raise ServerStartError(
                f"kafka refused to create topic {topic} (error code {code}); read {log_file(settings)}"
            )
    echo(f"kafka: created topics {', '.join(missing)} ({settings.topic_partitions} partitions each)")


def status(settings: Settings) -> ServerStatus:
    """Return the broker's pid (if we started it) and whether it answers an admin request."""
    pid = FILES.running_pid(settings)
    topics = list_topics(settings)
    healthy = topics is not None
    detail = f"{len(topics)} topics" if topics is not None else "not answering"
    return ServerStatus(NAME, pid, f"{LOCALHOST}:{settings.kafka_port}", healthy, detail)
