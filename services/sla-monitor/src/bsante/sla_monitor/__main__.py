"""Run the SLA monitor alone (distributed topology)."""

from bsante.chassis.runner import run_service
from bsante.sla_monitor.app import build
from bsante.sla_monitor.settings import SlaMonitorSettings

if __name__ == "__main__":
    run_service(lambda s: build(s, standalone=True), SlaMonitorSettings())
