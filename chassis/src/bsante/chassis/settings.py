"""Service settings from the environment, one prefix per service (PATIENT_STORE_URL, ...)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Common settings; a service subclasses it and sets its own `env_prefix`."""

    model_config = SettingsConfigDict(env_prefix="BSANTE_", extra="ignore")

    service_name: str = "service"
    store_url: str = Field("sqlite:///var/service.db", description="sqlite:///... or mongodb://")
    store_database: str = Field("", description="MongoDB database name (default: service name)")
    bus_url: str = Field("embedded://var", description="embedded://<dir> or kafka://host:9092")
    # Kafka security (distributed topology): TLS to the brokers, optionally with a client
    # certificate (Strimzi KafkaUser of type tls) or SASL SCRAM-SHA-512 over TLS.
    bus_tls: bool = Field(False, description="Connect to Kafka over TLS")
    bus_ca_file: str = Field("", description="PEM file of the brokers' CA (default: system CAs)")
    bus_cert_file: str = Field("", description="PEM client certificate (mutual TLS)")
    bus_key_file: str = Field("", description="PEM key of the client certificate")
    bus_sasl_username: str = Field("", description="SASL SCRAM-SHA-512 user (implies TLS)")
    bus_sasl_password_file: str = Field("", description="File holding the SASL password")
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
    # Blob storage, for services built with blobs (bsante.chassis.blobs).
    blob_url: str = Field(
        "file://var/blobs", description="file://<dir> or mongodb://... (GridFS, STORE_DATABASE)"
    )
    blob_gc_interval_seconds: float = Field(
        3600.0, ge=1, le=86_400, description="How often unreferenced blobs are collected"
    )
    # The outbox relay and retention (bsante.chassis.messaging.RelayPolicy).
    outbox_batch_size: int = Field(500, ge=1, le=10_000, description="Rows published per batch")
    outbox_max_attempts: int = Field(
        10, ge=1, le=1000, description="A row failing this many times is parked"
    )
    relay_lease_seconds: float = Field(
        15.0, ge=1, le=600, description="Lease letting one replica's relay publish at a time"
    )
    retention_days: float = Field(
        7.0,
        gt=0,
        le=365,
        description="Sent outbox rows, inbox claims and embedded-log entries kept this long",
    )
    purge_interval_seconds: float = Field(
        3600.0, ge=1, le=86_400, description="How often the retention purge runs"
    )
    # Service-to-service calls (client credentials at identity); see service_client.py.
    service_token_url: str = Field(
        "http://127.0.0.1:8000/api/identity/oauth/token",
        description="identity's OAuth2 token endpoint, where this service gets its own token",
    )
    service_client_id: str = Field("", description="This service's client id (default: its name)")
    service_client_secret: SecretStr = Field(
        SecretStr(""), description="This service's client secret"
    )
    service_client_secret_file: str = Field(
        "", description="File holding the client secret, read when the secret setting is empty"
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed by CORS (JSON list); none by default",
    )
    drain_seconds: float = Field(
        5.0,
        ge=0,
        le=120,
        description="On SIGTERM: how long /health/ready answers 503 (while the load balancer "
        "takes the pod out) before the server stops accepting, finishes what is in flight, "
        "and exits",
    )
    shutdown_timeout_seconds: float = Field(
        15.0, ge=1, le=600, description="Longest wait for requests in flight once draining"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Peers (IPs or networks) whose X-Forwarded-For is believed; none by default",
    )
