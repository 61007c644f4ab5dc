"""Run the card bridge on this workstation: `python -m bsante.card_bridge` (127.0.0.1 only)."""

import uvicorn

from bsante.card_bridge.http import asgi, build_app
from bsante.card_bridge.settings import CardBridgeSettings

if __name__ == "__main__":
    settings = CardBridgeSettings()
    app = build_app(settings)
    print(f"card bridge: pairing token in {settings.pairing_file}")  # noqa: T201
    # Loopback only, by design: the local API is for this workstation's browser.
    uvicorn.run(asgi(app), host="127.0.0.1", port=settings.port, lifespan="on")
