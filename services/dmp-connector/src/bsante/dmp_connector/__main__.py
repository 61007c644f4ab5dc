"""Run the DMP connector alone (distributed topology)."""

from bsante.chassis.runner import run_service
from bsante.dmp_connector.app import build
from bsante.dmp_connector.settings import DmpConnectorSettings

if __name__ == "__main__":
    run_service(lambda s: build(s, standalone=True), DmpConnectorSettings())
