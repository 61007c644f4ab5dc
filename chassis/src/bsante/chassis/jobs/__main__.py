"""Ops command line over a service's jobs, on its store directly: list, show, retry.

    python -m bsante.chassis.jobs list  --store-url sqlite:///var/dmp-connector.db [--state failed]
    python -m bsante.chassis.jobs show  --store-url ... JOB_ID
    python -m bsante.chassis.jobs retry --store-url ... JOB_ID

Exit status: 0 done, 2 bad arguments, unknown job or a job that cannot be retried.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from bsante.chassis.errors import DomainError
from bsante.chassis.jobs import JobState, get_job, list_jobs, retry_job
from bsante.chassis.store.factory import store_from_url


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m bsante.chassis.jobs", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store-url", required=True, help="sqlite:///... or mongodb://...")
    common.add_argument("--database", default="", help="MongoDB database (the service's name)")
    commands = cli.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", parents=[common], help="jobs, newest first")
    listing.add_argument("--state", choices=[s.value for s in JobState])
    listing.add_argument("--kind")
    listing.add_argument("--limit", type=int, default=50)
    for name, text in (("show", "one job, with its payload"), ("retry", "retry a failed job")):
        command = commands.add_parser(name, parents=[common], help=text)
        command.add_argument("job_id")
    return cli


async def run(args: argparse.Namespace) -> int:
    if args.store_url.startswith("mongodb") and not args.database:
        print("error: --database is required with a MongoDB store", file=sys.stderr)
        return 2
    store = store_from_url(args.store_url, database=args.database or "unused")
    await store.start()
    try:
        if args.command == "list":
            jobs, total = await list_jobs(
                store,
                state=JobState(args.state) if args.state else None,
                kind=args.kind,
                limit=args.limit,
            )
            for job in jobs:
                error = job.last_error.message if job.last_error else ""
                print(
                    f"{job.id}  {job.state.value:<9}  {job.kind}  attempts={job.attempts}  {error}"
                )
            print(f"{len(jobs)} of {total} jobs", file=sys.stderr)
        elif args.command == "show":
            print(json.dumps((await get_job(store, args.job_id)).to_json(), indent=2))
        else:
            job = await retry_job(store, args.job_id, by="cli")
            print(f"{job.id} is {job.state.value} again, due now", file=sys.stderr)
    except DomainError as error:
        print(f"error: {error.detail}", file=sys.stderr)
        return 2
    finally:
        await store.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
