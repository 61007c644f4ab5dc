"""Forms settings (env prefix FORMS_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from bsante.chassis.settings import ServiceSettings


class FormsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FORMS_", extra="ignore")

    service_name: str = "forms"
    store_url: str = "sqlite:///var/forms.db"
    port: int = 8084
    patient_url: str = Field(
        "http://127.0.0.1:8000/api/patient",
        description="Base URL of the patient service API (asked with forms' service token)",
    )
    patient_timeout_seconds: float = Field(5.0, gt=0, le=60)
