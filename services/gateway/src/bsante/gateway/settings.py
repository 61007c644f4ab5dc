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
    stream_buffer: int = Field(
        1000, ge=10, le=100_000, description="Events kept for Last-Event-ID replay (/events)"
    )
    stream_group: str = Field(
        "gateway-stream",
        description="The bus consumer group of /events (one per gateway replica)",
    )
    stream_enabled: bool = Field(
        True, description="Serve /events (consumes bsante.card-bridge.v1 and others)"
    )
