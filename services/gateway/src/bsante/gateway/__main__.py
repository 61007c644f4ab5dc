"""Run the gateway alone in front of the services' URLs (distributed topology)."""

from bsante.chassis.service import bootstrap
from bsante.gateway.app import build_proxy
from bsante.gateway.settings import GatewaySettings

if __name__ == "__main__":
    import uvicorn

    settings = GatewaySettings()
    bootstrap(settings)
    uvicorn.run(
        build_proxy(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=None,
    )
