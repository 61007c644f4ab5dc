"""Read a Kafka topic from the beginning to its current end, for the DLQ command."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bsante.chassis.bus import Message
from bsante.chassis.bus.kafka import RESERVED_HEADERS


class KafkaTopicReader:
    """No consumer group: reading commits nothing and moves no service's offsets."""

    def __init__(self, bootstrap_servers: str, *, timeout_ms: int = 1000) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.timeout_ms = timeout_ms

    async def read(self, topic: str) -> list[Message]:
        consumer: Any = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            await consumer.topics()  # loads the cluster metadata
            partitions = consumer.partitions_for_topic(topic) or set()
            assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
            if not assigned:
                return []
            consumer.assign(assigned)
            await consumer.seek_to_beginning(*assigned)
            end = await consumer.end_offsets(assigned)
            found: list[Message] = []
            while [tp for tp in assigned if await consumer.position(tp) < end[tp]]:
                batches = await consumer.getmany(*assigned, timeout_ms=self.timeout_ms)
                for records in batches.values():
                    for record in records:
                        if record.offset >= end[TopicPartition(record.topic, record.partition)]:
                            continue
                        found.append(
                            Message(
                                topic=record.topic,
                                key=(record.key or b"").decode(errors="backslashreplace"),
                                value=record.value or b"",
                                headers={
                                    k: v.decode(errors="backslashreplace")
                                    for k, v in record.headers
                                    if k not in RESERVED_HEADERS
                                },
                                offset=record.offset,
                            )
                        )
            return sorted(found, key=lambda m: m.offset or 0)
        finally:
            await consumer.stop()
