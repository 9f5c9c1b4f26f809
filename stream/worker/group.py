"""Who consumes for the workers' consumer group right now, read from Kafka (for steps that need every
worker stopped, such as a store migration)."""

from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from stream.config import Settings
from stream.errors import WorkersRunning

CONNECT_S = 5.0


def members_of(groups: Sequence[Mapping[str, Any]], group_id: str) -> list[str]:
    """``client_id@client_host`` of each member of ``group_id`` in DescribeGroups answers (pure).

    >>> members_of([{"group": "toyfuse", "members": [{"client_id": "w-1", "client_host": "/10.0.0.5"}]}], "toyfuse")
    ['w-1@/10.0.0.5']
    """
    return [
        f"{member['client_id']}@{member['client_host']}"
        for group in groups
        if group["group"] == group_id
        for member in group["members"]
    ]


async def group_members(settings: Settings) -> list[str]:
    """The members of the workers' consumer group (``settings.app_id``); empty when no worker consumes.

    Raises:
        WorkersRunning: Kafka could not be asked, so whether workers run is unknown.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=int(CONNECT_S * 1000)
    )
    try:
        await admin.start()
        answers = await admin.describe_consumer_groups([settings.app_id])
    except KafkaError as exc:
        raise WorkersRunning(
            f"cannot tell whether workers consume as group {settings.app_id!r}: Kafka at "
            f"{settings.kafka_bootstrap} did not answer ({type(exc).__name__}: {exc}); start Kafka, or pass "
            "--force once every worker is stopped"
        ) from exc
    finally:
        await admin.close()
    return members_of(
        [group for answer in answers for group in answer.to_object()["groups"]], settings.app_id
    )


async def refuse_while_workers_run(settings: Settings, step: str) -> None:
    """Return when no member consumes for the workers' group.

    Raises:
        WorkersRunning: members are consuming (they are named), or Kafka could not be asked.
    """
    members = await group_members(settings)
    if members:
        raise WorkersRunning(
            f"{len(members)} worker(s) consume as group {settings.app_id!r} ({', '.join(members)}); stop every "
            f"worker before {step} (`toyfuse stack down` stops the local one), then run it again"
        )
