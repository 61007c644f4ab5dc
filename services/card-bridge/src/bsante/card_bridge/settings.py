"""Settings of the card bridge agent (environment variables CARD_BRIDGE_*)."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CardBridgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARD_BRIDGE_")

    platform_url: str = Field(
        "http://127.0.0.1:8000", description="The platform's gateway, where the agent posts"
    )
    platform_origin: str = Field(
        "http://127.0.0.1:8000",
        description="The web app's origin: the only one whose pages may call the local API",
    )
    workstation_id: str = Field(default_factory=lambda: socket.gethostname()[:100])
    port: int = Field(8088, ge=1, le=65535)
    pairing_file: Path = Field(
        Path.home() / ".config" / "bsante" / "card-bridge-pairing",
        description="Where the pairing token is kept (created, mode 0600, at first start)",
    )
    poll_ms: int = Field(500, ge=50, le=5000, description="Reader watch period")
    platform_timeout_seconds: float = Field(10.0, gt=0)
