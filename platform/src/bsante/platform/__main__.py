"""`python -m bsante.platform`: start every service and the gateway in one process."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import uvicorn

from bsante.chassis.logging import configure_logging
from bsante.chassis.tracing import configure_tracing
from bsante.platform.embedded import build_platform


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--data", default="var", help="Directory of the SQLite files and bus log")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)

    configure_logging(args.log_level)
    configure_tracing("bsante-platform")
    base = f"http://{args.host}:{args.port}"
    app = build_platform(Path(args.data))
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=10,
    )
    server = uvicorn.Server(config)
    print(
        "\nBureautique Santé — embedded platform\n"
        f"  API gateway        {base}/api/...\n"
        f"  OpenAPI document   {base}/openapi.json   (Swagger UI: {base}/docs)\n"
        f"  AsyncAPI document  {base}/asyncapi.json\n"
        f"  data directory     {Path(args.data).resolve()}\n"
        "  demo login         admin@tilleuls.demo / Tilleuls-Demo-2026\n"
        "  Ctrl-C stops cleanly.\n",
        file=sys.stderr,
        flush=True,
    )
    try:
        # uvloop when installed (as uvicorn itself would pick it): a faster event loop, notably
        # for the wake-ups of the SQLite connection threads.
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(server.serve())
    except KeyboardInterrupt:
        # uvicorn re-raises the Ctrl-C it captured once the services have stopped cleanly.
        pass
    print("Bureautique Santé stopped.", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
