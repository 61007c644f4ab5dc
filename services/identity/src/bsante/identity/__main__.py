"""Run the identity service alone (distributed topology)."""

from bsante.chassis.runner import run_service
from bsante.identity.app import build
from bsante.identity.settings import IdentitySettings

if __name__ == "__main__":
    run_service(lambda s: build(s, standalone=True), IdentitySettings())
