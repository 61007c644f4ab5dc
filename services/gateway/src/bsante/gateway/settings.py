"""Gateway settings (env prefix GATEWAY_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from bsante.chassis.settings import ServiceSettings
from bsante.contracts import manifest


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: str = "gateway"
    port: int = 8000
    services: dict[str, str] = Field(
        # Each service of the manifest at its container name (compose, Kubernetes).
        default_factory=lambda: manifest.load().gateway_routes(),
        description="Service name -> base URL (distributed topology)",
    )
    proxy_timeout_seconds: float = 30.0
