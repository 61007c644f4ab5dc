"""Write the gateway's merged OpenAPI document (as GET /openapi.json serves it) to a file."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bsante.gateway import openapi
from bsante.gateway.app import TITLE, VERSION
from bsante.platform.embedded import build_services


def merged_document() -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bsante-openapi-") as data:
        services = build_services(Path(data))  # nothing is started: documents only
        return openapi.merge(TITLE, VERSION, {n: s.app.openapi() for n, s in services.items()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", type=Path)
    args = parser.parse_args(argv)
    args.output.write_text(json.dumps(merged_document(), indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
