"""Where the toolkit keeps what it derives from installed data (compiled schematrons, fonts)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "BSANTE_DOCUMENTS_CACHE"


def default_cache_dir() -> Path:
    """`BSANTE_DOCUMENTS_CACHE`, else `$XDG_CACHE_HOME/bsante-documents` (`~/.cache/...`)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bsante-documents"
