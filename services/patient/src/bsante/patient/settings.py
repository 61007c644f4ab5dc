"""Patient settings (env prefix PATIENT_)."""

from pydantic_settings import SettingsConfigDict

from bsante.chassis.settings import ServiceSettings


class PatientSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PATIENT_", extra="ignore")

    service_name: str = "patient"
    store_url: str = "sqlite:///var/patient.db"
    port: int = 8082
