"""Run the patient service alone (distributed topology)."""

from bsante.chassis.runner import run_service
from bsante.patient.app import build
from bsante.patient.settings import PatientSettings

if __name__ == "__main__":
    run_service(lambda s: build(s, standalone=True), PatientSettings())
