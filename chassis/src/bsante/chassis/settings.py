"""Service settings from the environment, one prefix per service (PATIENT_STORE_URL, ...)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Common settings; a service subclasses it and sets its own `env_prefix`."""

    model_config = SettingsConfigDict(env_prefix="BSANTE_", extra="ignore")

    service_name: str = "service"
    store_url: str = Field("sqlite:///var/service.db", description="sqlite:///... or mongodb://")
    store_database: str = Field("", description="MongoDB database name (default: service name)")
    bus_url: str = Field("embedded://var", description="embedded://<dir> or kafka://host:9092")
    jwks_url: str = Field(
        "http://127.0.0.1:8000/api/identity/.well-known/jwks.json",
        description="Where this service fetches identity's public keys",
    )
    token_issuer: str = "bsante-identity"
    token_audience: str = "bsante"
    host: str = "0.0.0.0"
    port: int = 8080
    max_body_bytes: int = Field(1_048_576, description="Larger request bodies get 413")
    log_level: str = "INFO"
    otlp_endpoint: str = Field("", description="OTLP/HTTP traces endpoint; empty = no export")
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed by CORS (JSON list); none by default",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Peers (IPs or networks) whose X-Forwarded-For is believed; none by default",
    )
