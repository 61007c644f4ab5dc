"""DMP feeding: DocumentSigned -> simulator acknowledgement, over 500 documents (target p99 <
200 ms), and submissions per second for a burst of 500.

The connector runs on SQLite and the embedded log, as in the embedded platform, against the DMP
simulator in its own process with no think time; the latency of one document is from the
publication of its event to the moment the simulator accepted it (its own clock, same host).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dmp_kit import INS, connector, simulator  # type: ignore[import-not-found]

from bsante.chassis.bus import Message
from bsante.chassis.bus.embedded import EmbeddedBus
from bsante.contracts.envelope import Envelope
from bsante.dmp_connector import pki

DOCUMENTS = int(__import__("os").environ.get("DMP_BENCH_DOCUMENTS", "500"))


envelope_topic = "bsante.documents.v1"


def _envelope(payload: object, subject: str) -> Envelope:
    from bsante.contracts.events import Payload

    assert isinstance(payload, Payload)
    return Envelope(
        event_type=payload.event_type,
        schema_version=1,
        producer="bench",
        structure_id="demo-ehpad",
        subject_id=subject,
        correlation_id=subject,
        payload=payload.model_dump(mode="json"),
    )


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(tmp: Path) -> tuple[list[float], float]:
    demo = pki.generate(tmp / "pki")
    with simulator(demo.ca_cert) as sim:
        async with connector(tmp / "seq", sim.url, demo) as conn:
            pid = await conn.qualified_patient()
            published: dict[str, datetime] = {}
            bus = EmbeddedBus(conn.data)
            await bus.start()
            for _ in range(DOCUMENTS):
                doc_id, body = conn.cda(pid)
                envelope = _envelope(conn.signed(pid, doc_id, body), doc_id)
                await bus.publish(Message(envelope_topic, doc_id, envelope.to_json(), {}))
                published[doc_id] = envelope.occurred_at
                while not await conn.state_is(doc_id, "submitted", "failed"):
                    await asyncio.sleep(0.005)
            await bus.stop()
            held = {d["unique_id"].rsplit("^", 1)[1]: d for d in sim.documents(INS)}
            latencies = [
                (datetime.fromisoformat(held[d]["received_at"]) - at).total_seconds()
                for d, at in published.items()
            ]
        async with connector(tmp / "burst", sim.url, demo) as conn:
            pid = await conn.qualified_patient()
            ids = []
            bus = EmbeddedBus(conn.data)
            await bus.start()
            messages = []
            for _ in range(DOCUMENTS):
                doc_id, body = conn.cda(pid)
                envelope = _envelope(conn.signed(pid, doc_id, body), doc_id)
                messages.append(Message(envelope_topic, doc_id, envelope.to_json(), {}))
                ids.append(doc_id)
            started = time.perf_counter()
            await bus.publish_many(messages)
            await bus.stop()
            for doc_id in ids:
                while not await conn.state_is(doc_id, "submitted", "failed"):
                    await asyncio.sleep(0.01)
            rate = DOCUMENTS / (time.perf_counter() - started)
    return latencies, rate


@pytest.mark.timeout(1800)
def test_document_signed_to_dmp_acknowledgement(benchmark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results: list[tuple[list[float], float]] = []

    def run() -> None:
        results.append(asyncio.run(_run(tmp_path)))

    benchmark.pedantic(run, rounds=1, iterations=1)
    latencies, rate = results[0]
    assert len(latencies) == DOCUMENTS
    print(
        f"\nDocumentSigned -> DMP acknowledgement over {DOCUMENTS} documents, one at a time: "
        f"p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p99 {_p(latencies, 0.99) * 1000:.0f} ms (target < 200 ms); "
        f"burst of {DOCUMENTS}: {rate:.1f} submissions/s"
    )
    _ = UTC
