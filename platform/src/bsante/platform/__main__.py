"""`python -m bsante.platform`: start every service and the gateway in one process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import uvicorn

from bsante.chassis.logging import configure_logging
from bsante.chassis.tasks import freeze_startup_heap, run_process_exit_hooks
from bsante.chassis.tracing import configure_tracing
from bsante.identity.psc_provider import DEMO_CLIENT_ID, RegisteredClient, serving
from bsante.platform.embedded import build_platform


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


@contextlib.asynccontextmanager
async def local_psc(base: str, port: int) -> AsyncIterator[str]:
    """The local Pro Santé Connect provider, and identity configured as its client; yields
    the issuer. The client secret is drawn at each start and handed over in-process through
    identity's settings (its environment), as an operator would configure the real PSC."""
    secret = secrets.token_urlsafe(32)
    callback = f"{base}/api/identity/auth/psc/callback"
    client = RegisteredClient(DEMO_CLIENT_ID, [callback], secret, None, [f"{base}/docs"])
    async with serving({client.client_id: client}, port=port) as provider:
        issuer: str = provider.state.config.issuer
        os.environ.update(
            {
                "IDENTITY_PSC_ISSUER": issuer,
                "IDENTITY_PSC_CLIENT_ID": client.client_id,
                "IDENTITY_PSC_CLIENT_SECRET": secret,
                "IDENTITY_PSC_REDIRECT_URI": callback,
                "IDENTITY_PSC_POST_LOGOUT_REDIRECT_URI": f"{base}/docs",
            }
        )
        yield issuer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--data", default="var", help="Directory of the SQLite files and bus log")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--psc-port",
        type=int,
        default=0,
        help="Port of the local Pro Santé Connect provider (0: any free port; -1: none). "
        "Not started when IDENTITY_PSC_ISSUER names a provider",
    )
    args = parser.parse_args(argv)

    configure_logging(args.log_level)
    configure_tracing("bsante-platform")
    base = f"http://{args.host}:{args.port}"

    async def serve() -> None:
        async with contextlib.AsyncExitStack() as stack:
            psc = "  PSC login          none (IDENTITY_PSC_ISSUER)\n"
            if args.psc_port >= 0 and not os.environ.get("IDENTITY_PSC_ISSUER"):
                issuer = await stack.enter_async_context(local_psc(base, args.psc_port))
                psc = f"  PSC login (local)  {base}/api/identity/auth/psc/authorize  ({issuer})\n"
            app = build_platform(Path(args.data), on_started=freeze_startup_heap)
            config = uvicorn.Config(
                app,
                host=args.host,
                port=args.port,
                access_log=False,
                log_config=None,
                timeout_graceful_shutdown=10,
            )
            print(
                "\nBureautique Santé — embedded platform\n"
                f"  API gateway        {base}/api/...\n"
                f"  OpenAPI document   {base}/openapi.json   (Swagger UI: {base}/docs)\n"
                f"  AsyncAPI document  {base}/asyncapi.json\n"
                f"  data directory     {Path(args.data).resolve()}\n"
                "  demo login         admin@tilleuls.demo / Tilleuls-Demo-2026\n"
                f"{psc}"
                "  Ctrl-C stops cleanly.\n",
                file=sys.stderr,
                flush=True,
            )
            await uvicorn.Server(config).serve()

    try:
        # uvloop when installed (as uvicorn itself would pick it): a faster event loop, notably
        # for the wake-ups of the SQLite connection threads.
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve())
    except KeyboardInterrupt:
        # uvicorn re-raises the Ctrl-C it captured once the services have stopped cleanly.
        pass
    finally:
        run_process_exit_hooks()
    print("Bureautique Santé stopped.", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
