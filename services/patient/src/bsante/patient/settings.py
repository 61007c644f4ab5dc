"""Patient settings (env prefix PATIENT_)."""

from typing import Literal

from pydantic_settings import SettingsConfigDict

from bsante.chassis.settings import ServiceSettings


class PatientSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PATIENT_", extra="ignore")

    service_name: str = "patient"
    store_url: str = "sqlite:///var/patient.db"
    port: int = 8082
    # INSi teleservice: the simulator runs here (embedded topology, tests); "soap" is the
    # shape of the real call, not usable without the establishment's certificate.
    insi_mode: Literal["simulator", "soap"] = "simulator"
    # JSON dataset of the simulator; empty = the built-in demo set (incl. ANS test identities).
    insi_dataset: str = ""
    insi_endpoint: str = ""
    # Identifier system of the IPP (local patient id); the structure id is appended.
    ipp_system_base: str = "urn:bsante:ipp:"
