"""Identity settings (env prefix IDENTITY_)."""

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from bsante.chassis.settings import ServiceSettings
from bsante.identity.service_clients import ServiceClientSpec


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="IDENTITY_", extra="ignore")

    service_name: str = "identity"
    store_url: str = "sqlite:///var/identity.db"
    port: int = 8081
    access_token_ttl_seconds: int = Field(900, ge=60, le=3600)
    refresh_token_ttl_seconds: int = Field(
        12 * 3600, ge=300, le=30 * 24 * 3600, description="Lifetime of a session's refresh token"
    )
    refresh_grace_seconds: int = Field(
        20,
        ge=0,
        le=60,
        description="After a refresh, the old refresh token returns the same new pair for this "
        "long (two tabs refreshing at once); a reuse later revokes the session",
    )
    seed_demo: bool = Field(
        False, description="Create the demo structures and users if absent (demo only)"
    )
    signing_keys_dir: str = Field(
        "",
        description="Directory of mounted Ed25519 PEM keys (current.pem signs, every *.pem is "
        "published); empty: keys generated and kept in the store",
    )
    lockout_threshold: int = Field(5, ge=1, le=100, description="Failures before a lock")
    lockout_base_seconds: int = Field(30, ge=1, description="First lock; doubles per failure")
    lockout_max_seconds: int = Field(3600, ge=1, description="Longest lock")
    key_cache_seconds: float = Field(
        5.0, ge=0, description="How often a replica re-reads the signing keys from the store"
    )
    key_activation_seconds: int = Field(
        15,
        ge=0,
        le=3600,
        description="A rotated key is published this long before it signs (verifiers refetch "
        "the JWKS at most every 10 s)",
    )
    cps_ca_paths: list[str] = Field(
        default_factory=list,
        description="PEM files of the CPS trust store (IGC-Santé roots and intermediates)",
    )
    cps_crl_paths: list[str] = Field(default_factory=list, description="CRL files (PEM or DER)")
    cps_require_crl: bool = Field(True, description="Refuse a CPS login without a fresh CRL")
    cps_nonce_ttl_seconds: int = Field(120, ge=10, le=600)
    annuaire_batch_size: int = Field(2000, ge=1, le=20000)
    annuaire_max_reject_ratio: float = Field(0.5, ge=0, le=1)
    service_clients: dict[str, ServiceClientSpec] = Field(
        default_factory=dict,
        description="JSON: client id -> {scopes, secret_hash or secret_file} (client credentials)",
    )
    service_token_ttl_seconds: int = Field(
        600, ge=60, le=3600, description="Lifetime of a service token (client credentials)"
    )
    service_secret_overlap_seconds: int = Field(
        24 * 3600,
        ge=0,
        le=30 * 24 * 3600,
        description="After a rotation, the previous client secret stays valid this long",
    )

    @model_validator(mode="after")
    def _service_tokens_outlive_no_key(self) -> Self:
        # A retired signing key stays published for the access-token lifetime (keys.py).
        if self.service_token_ttl_seconds > self.access_token_ttl_seconds:
            raise ValueError("service_token_ttl_seconds must not exceed access_token_ttl_seconds")
        return self
