"""Dead letters and announcements leave through the sink, bounded whatever the input was."""

from stream.worker.delivery import Delivery, PipelineTopics, RawMessage
from tests.conftest import RecordingSink


async def test_a_dead_letter_keeps_a_normal_key_and_drops_an_oversized_one() -> None:
    sink = RecordingSink()
    delivery = Delivery(sink, PipelineTopics(embeddings="emb", deadletter="dlq"), "w")

    await delivery.deadletter(RawMessage("t", 0, 1, None, b"toy-1", b"{"), "invalid_json", "not JSON")
    await delivery.deadletter(RawMessage("t", 0, 2, None, b"k" * 2000, b"{"), "invalid_json", "not JSON")

    assert [(topic, key) for topic, key, _ in sink.sent] == [("dlq", b"toy-1"), ("dlq", None)]
    assert [value["source"]["offset"] for _, _, value in sink.sent] == [1, 2]
