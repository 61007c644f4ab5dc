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
    address_limit_requests: int = Field(
        120, ge=1, le=1_000_000, description="Token requests allowed per client address per window"
    )
    address_limit_window_seconds: int = Field(
        60, ge=1, le=86_400, description="The per-address rate limit's window"
    )
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

    psc_issuer: str = Field(
        "",
        description="Pro Santé Connect issuer; its discovery document is "
        "<issuer>/.well-known/openid-configuration. Empty: PSC login answers 503",
    )
    psc_client_id: str = Field("", description="Client id the ANS gave the platform")
    psc_client_secret: str = Field("", description="Client secret (client_secret_basic)")
    psc_client_secret_file: str = Field("", description="A file holding the client secret")
    psc_private_key_file: str = Field(
        "",
        description="PEM private key for private_key_jwt client authentication (RS256); "
        "when set, no secret is sent",
    )
    psc_redirect_uri: str = Field("", description="Redirect URI declared to the ANS")
    psc_post_logout_redirect_uri: str = Field(
        "", description="Where PSC's end-session endpoint sends the browser back"
    )
    psc_scope: str = Field("openid scope_all", description="Scopes asked of PSC")
    psc_acr_values: list[str] = Field(
        default_factory=lambda: ["eidas1"],
        description="Accepted `acr` of the ID token (eidas1: CPS card or e-CPS app)",
    )
    psc_state_ttl_seconds: int = Field(600, ge=30, le=3600)
    psc_timeout_seconds: float = Field(5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _service_tokens_outlive_no_key(self) -> Self:
        # A retired signing key stays published for the access-token lifetime (keys.py).
        if self.service_token_ttl_seconds > self.access_token_ttl_seconds:
            raise ValueError("service_token_ttl_seconds must not exceed access_token_ttl_seconds")
        return self
