"""Tests for stream/worker/group.py: the members of the workers' consumer group, from DescribeGroups."""

import pytest

from stream.config import Settings
from stream.errors import WorkersRunning
from stream.worker.group import group_members, members_of
from tests.conftest import free_port


def test_members_are_named_by_client_and_host_and_only_for_the_workers_group() -> None:
    answers = [
        {"group": "toyfuse", "members": [{"client_id": "w-1", "client_host": "/10.0.0.5"}]},
        {"group": "other", "members": [{"client_id": "x", "client_host": "/10.0.0.9"}]},
    ]
    assert members_of(answers, "toyfuse") == ["w-1@/10.0.0.5"]
    assert members_of([{"group": "toyfuse", "members": []}], "toyfuse") == []


async def test_a_kafka_that_does_not_answer_leaves_it_unknown_and_refuses() -> None:
    settings = Settings(kafka_port=free_port())
    with pytest.raises(
        WorkersRunning, match="cannot tell whether workers consume as group 'toyfuse'.*--force"
    ):
        await group_members(settings)
