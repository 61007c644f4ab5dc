"""Identity settings (env prefix IDENTITY_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from bsante.chassis.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IDENTITY_", extra="ignore")

    service_name: str = "identity"
    store_url: str = "sqlite:///var/identity.db"
    port: int = 8081
    access_token_ttl_seconds: int = Field(900, ge=60, le=3600)
    seed_demo: bool = Field(True, description="Create the demo structures and users if absent")
