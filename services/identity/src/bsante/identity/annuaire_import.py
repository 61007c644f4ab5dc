"""Import an Annuaire Santé extraction straight into identity's store (no HTTP body limit).

    python -m bsante.identity.annuaire_import PS_LibreAcces_Personne_activite.txt

Reads IDENTITY_STORE_URL (default sqlite:///var/identity.db) like the service. The import is
streamed (memory does not grow with the file) and idempotent; a malformed file is refused with
exit code 2 and nothing written. Events go to the store's outbox; the running identity service
publishes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from bsante.chassis.bus.factory import bus_from_url
from bsante.chassis.messaging import Messaging
from bsante.chassis.store.factory import store_from_url
from bsante.identity.directory.importer import AnnuaireImportRefused, import_annuaire
from bsante.identity.settings import IdentitySettings


async def run(path: Path, settings: IdentitySettings) -> int:
    store = store_from_url(
        settings.store_url, database=settings.store_database or settings.service_name
    )
    await store.start()
    try:
        # The bus is never started: the import only writes the outbox, in the store.
        messaging = Messaging(
            settings.service_name,
            store,
            bus_from_url(settings.bus_url, client_id="identity-import"),
        )
        try:
            report = await import_annuaire(
                messaging,
                path,
                batch_size=settings.annuaire_batch_size,
                max_reject_ratio=settings.annuaire_max_reject_ratio,
            )
        except AnnuaireImportRefused as refused:
            print(json.dumps({"refused": refused.detail, "errors": refused.errors}, indent=2))
            return 2
        summary = report.to_json()
        summary["rejections"] = summary["rejections"][:20]
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return 0
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", type=Path, help="PS_LibreAcces_Personne_activite_*.txt")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        print(f"no such file: {args.file}", file=sys.stderr)
        return 2
    return asyncio.run(run(args.file, IdentitySettings()))


if __name__ == "__main__":
    sys.exit(main())
