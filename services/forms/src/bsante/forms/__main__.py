"""Run the forms service alone (distributed topology)."""

from bsante.chassis.runner import run_service
from bsante.forms.app import build
from bsante.forms.settings import FormsSettings

if __name__ == "__main__":
    run_service(lambda s: build(s, standalone=True), FormsSettings())
