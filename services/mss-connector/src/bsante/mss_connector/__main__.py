"""Run the mss-connector alone (distributed topology)."""

from bsante.chassis.runner import run_service
from bsante.mss_connector.app import build
from bsante.mss_connector.settings import MssConnectorSettings

if __name__ == "__main__":
    run_service(lambda s: build(s, standalone=True), MssConnectorSettings())
