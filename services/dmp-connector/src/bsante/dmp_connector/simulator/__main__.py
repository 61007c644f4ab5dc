"""`python -m bsante.dmp_connector.simulator`: the DMP simulator on its own port (8090)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import uvicorn

from bsante.dmp_connector.simulator.app import Simulator, build_app
from bsante.dmp_connector.simulator.dataset import load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--dataset", type=Path, help="JSON: INS -> DMP state (default: demo set)")
    parser.add_argument("--trust-store", type=Path, help="PEM CAs a VIHF certificate must chain to")
    parser.add_argument("--think-ms", type=float, default=0.0, help="Delay before each answer")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr)
    sim = Simulator(
        load(args.dataset), trust_file=args.trust_store, think_seconds=args.think_ms / 1000
    )
    for line in sim.missing:
        print(f"DMP simulator: not checked: {line}", file=sys.stderr, flush=True)
    print(f"DMP simulator listening on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    uvicorn.run(
        build_app(sim),
        host=args.host,
        port=args.port,
        access_log=False,
        log_level=args.log_level.lower(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
