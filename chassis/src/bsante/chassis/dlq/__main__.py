"""Dead-letter command line: list, show and replay a service's dead letters of one topic.

    python -m bsante.chassis.dlq list   --service patient --topic bsante.forms.v1
    python -m bsante.chassis.dlq show   --service patient --topic bsante.forms.v1 --event-id ID
    python -m bsante.chassis.dlq replay --service patient --topic bsante.forms.v1 --event-id ID
    python -m bsante.chassis.dlq replay --service patient --topic bsante.forms.v1 --all

`--bus-url` is the service's bus (`embedded://var`, the default, or `kafka://host:9092`).
Exit status: 0 done, 2 bad arguments or an unknown event id (then nothing is published).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from bsante.chassis.bus import EventBus
from bsante.chassis.dlq import (
    DeadLetterSource,
    UnknownDeadLetter,
    consumer_group,
    dead_letters,
    replay,
    select,
)


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m bsante.chassis.dlq", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--service", required=True, help="the consumer (group bsante.<service>)")
    common.add_argument("--topic", required=True, help="the original topic, e.g. bsante.forms.v1")
    common.add_argument("--bus-url", default="embedded://var")
    commands = cli.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", parents=[common], help="the group's dead letters")
    listing.add_argument("--event-id")
    show = commands.add_parser("show", parents=[common], help="one dead letter's headers")
    show.add_argument("--event-id", required=True)
    again = commands.add_parser("replay", parents=[common], help="re-deliver, after a fix")
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument("--event-id")
    which.add_argument("--all", action="store_true", help="every dead letter of the group")
    return cli


def open_bus(url: str) -> tuple[EventBus, DeadLetterSource]:
    scheme, _, rest = url.partition("://")
    if scheme == "embedded":
        from bsante.chassis.bus.embedded import EmbeddedBus

        if not (Path(rest or "var") / "bus.db").is_file():
            raise FileNotFoundError(f"no embedded event log in {rest or 'var'}")
        embedded = EmbeddedBus(rest or "var")
        return embedded, embedded
    if scheme == "kafka":
        from bsante.chassis.bus.kafka import KafkaBus
        from bsante.chassis.dlq.kafka import KafkaTopicReader

        return KafkaBus(rest, client_id="bsante-dlq"), KafkaTopicReader(rest)
    raise ValueError(f"unsupported bus URL scheme {scheme!r} (embedded or kafka)")


async def run(args: argparse.Namespace) -> int:
    try:
        bus, source = open_bus(args.bus_url)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    group = consumer_group(args.service)
    await bus.start()
    try:
        letters = await dead_letters(source, args.topic, group)
        if args.command == "list":
            for letter in letters:
                if args.event_id is None or letter.event_id == args.event_id:
                    s = letter.summary()
                    print(
                        f"{s['event_id']}  {s['event_type']}  offset={s['dlq_offset']}  "
                        f"attempts={s['attempts']}  {s['error_type']}: {s['error_message']}"
                    )
            print(f"{len(letters)} dead letters of {group} on {args.topic}", file=sys.stderr)
            return 0
        chosen = select(letters, None if getattr(args, "all", False) else args.event_id)
        if args.command == "show":
            print(json.dumps([c.summary() for c in chosen], indent=2))
            return 0
        count = await replay(bus, chosen)
        print(f"replayed {count} dead letters to {group} on {args.topic}", file=sys.stderr)
        return 0
    except UnknownDeadLetter as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        await bus.stop()


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
