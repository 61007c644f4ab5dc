"""Run the documents service alone (distributed topology)."""

from bsante.chassis.runner import run_service
from bsante.documents.app import build
from bsante.documents.settings import DocumentsSettings

if __name__ == "__main__":
    run_service(lambda s: build(s, standalone=True), DocumentsSettings())
