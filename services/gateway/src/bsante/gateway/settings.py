"""Gateway settings (env prefix GATEWAY_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from bsante.chassis.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: str = "gateway"
    port: int = 8000
    services: dict[str, str] = Field(
        default_factory=lambda: {
            "identity": "http://identity:8080",
            "patient": "http://patient:8080",
            "sla-monitor": "http://sla-monitor:8080",
            "forms": "http://forms:8080",
        },
        description="Service name -> base URL (distributed topology)",
    )
    proxy_timeout_seconds: float = 30.0
