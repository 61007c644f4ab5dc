"""Swagger UI and ReDoc served with their assets, so /docs and /redoc work offline.

The assets come from the `fastapi-offline` distribution (pinned), never from a CDN.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

ASSETS_PATH = "/docs-assets"
ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")


def _assets_directory() -> str:
    return str(resources.files("fastapi_offline").joinpath("static"))


def install_offline_docs(app: FastAPI, *, openapi_url: str, title: str) -> None:
    """Replace FastAPI's CDN-based /docs and /redoc by pages whose assets the app serves."""
    app.router.routes[:] = [
        r
        for r in app.router.routes
        if getattr(r, "path", None) not in {"/docs", "/redoc", "/docs/oauth2-redirect"}
    ]
    app.docs_url = app.redoc_url = None
    app.mount(ASSETS_PATH, StaticFiles(directory=_assets_directory()), name="docs-assets")

    def root(request: Request) -> str:
        # Mounted under the gateway (/api/<service>), links keep the mount prefix.
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        base = root(request)
        return get_swagger_ui_html(
            openapi_url=base + openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{base}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{base}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{base}{ASSETS_PATH}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        base = root(request)
        return get_redoc_html(
            openapi_url=base + openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=f"{base}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{base}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )
