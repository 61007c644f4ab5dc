"""Build the AsyncAPI 3 document and per-event JSON Schemas from the registered contracts.

`python -m bsante.contracts.generate` rewrites the committed files; `--check` only compares.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import create_model

from bsante.contracts import events  # noqa: F401  (registers the events)
from bsante.contracts.compat import breaking_changes
from bsante.contracts.envelope import Envelope
from bsante.contracts.registry import EventSpec, registry
from bsante.contracts.topics import ALL

ROOT = Path(__file__).resolve().parent
ASYNCAPI_PATH = ROOT / "asyncapi.json"
SCHEMAS_DIR = ROOT / "schemas"


def typed_envelope(spec: EventSpec) -> type[Envelope]:
    """The envelope narrowed to one event: literal type and version, typed payload."""
    fields: dict[str, Any] = {
        "event_type": (Literal[spec.event_type], ...),
        "schema_version": (Literal[spec.schema_version], ...),
        "payload": (spec.payload, ...),
    }
    model: type[Envelope] = create_model(
        f"{spec.event_type}V{spec.schema_version}",
        __base__=Envelope,
        __doc__=spec.summary,
        **fields,
    )
    return model


def event_schema(spec: EventSpec) -> dict[str, Any]:
    return spec.payload.model_json_schema()


def asyncapi_document() -> dict[str, Any]:
    from faststream.kafka import KafkaBroker
    from faststream.specification import AsyncAPI

    broker = KafkaBroker("kafka:9092")
    for topic in ALL:
        specs = registry.for_topic(topic)
        if not specs:
            continue
        models = tuple(typed_envelope(s) for s in specs)
        schema: Any = models[0] if len(models) == 1 else Union[models]  # noqa: UP007
        broker.publisher(
            topic,
            title=f"{topic}:publish",
            description="Events of "
            + ", ".join(f"{s.event_type} v{s.schema_version}" for s in specs)
            + ". Key: subject_id. Headers: traceparent (W3C).",
            schema=schema,
        )
    spec = AsyncAPI(
        broker,
        title="Bureautique Santé integration events",
        version="1.0.0",
        description="Domain events exchanged by the services, one topic per producing service.",
        schema_version="3.0.0",
    )
    document: dict[str, Any] = json.loads(spec.to_specification().to_json())
    return document


def rendered() -> dict[Path, str]:
    files = {ASYNCAPI_PATH: json.dumps(asyncapi_document(), indent=2, sort_keys=True) + "\n"}
    for spec in registry:
        path = SCHEMAS_DIR / f"{spec.event_type}.v{spec.schema_version}.json"
        files[path] = json.dumps(event_schema(spec), indent=2, sort_keys=True) + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed files differ")
    args = parser.parse_args(argv)
    stale = []
    for spec in registry:
        committed = SCHEMAS_DIR / f"{spec.event_type}.v{spec.schema_version}.json"
        if committed.exists():
            problems = breaking_changes(json.loads(committed.read_text()), event_schema(spec))
            if problems:
                print(
                    f"{spec.event_type} v{spec.schema_version} changed incompatibly; "
                    "register a new schema_version instead:",
                    *problems,
                    sep="\n  ",
                )
                return 2
    for path, text in rendered().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("stale contract files (run `make contracts`):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
