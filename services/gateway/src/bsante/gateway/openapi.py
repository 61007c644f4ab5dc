"""One OpenAPI document for the front-end teams, merged from every service's own."""

from __future__ import annotations

import json
from typing import Any

from bsante.chassis.openapi import SECURITY_SCHEME, SHARED_SCHEMAS, problems

REF = "#/components/schemas/"


def _problem_response(status: int) -> dict[str, Any]:
    return problems(status)[status]


def _prefix_schema_names(document: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Service schemas get the service's prefix; the chassis' shared ones (Problem) keep
    their name, so a client has one problem type."""
    text = json.dumps(document).replace(f'"{REF}', f'"{REF}{prefix}')
    for shared in SHARED_SCHEMAS:
        text = text.replace(f'"{REF}{prefix}{shared}"', f'"{REF}{shared}"')
    renamed: dict[str, Any] = json.loads(text)
    schemas = renamed.get("components", {}).get("schemas", {})
    renamed.setdefault("components", {})["schemas"] = {
        (k if k in SHARED_SCHEMAS else prefix + k): v for k, v in schemas.items()
    }
    return renamed


def merge(title: str, version: str, documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Paths under /api/<service>, schema names prefixed by the service to stay unique.

    Each operation keeps its own security requirement (public ones have none) and its
    problem responses and headers, as the service's `bsante.chassis.openapi` declared them.
    """
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Every error is RFC 9457 application/problem+json.",
        },
        "paths": {},
        "components": {
            "schemas": {},
            "securitySchemes": {
                SECURITY_SCHEME: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
        "tags": [],
    }
    for name, document in sorted(documents.items()):
        prefix = "".join(part.capitalize() for part in name.split("-")) + "_"
        renamed = _prefix_schema_names(document, prefix)
        for path, item in renamed.get("paths", {}).items():
            for operation in item.values():
                if isinstance(operation, dict) and "responses" in operation:
                    # In the distributed topology the gateway answers 503 when a service
                    # does not (upstream-down), on any operation.
                    operation["responses"].setdefault("503", _problem_response(503))
            merged["paths"][f"/api/{name}{path}"] = item
        merged["components"]["schemas"].update(renamed.get("components", {}).get("schemas", {}))
        merged["tags"].append({"name": name, "description": document["info"]["title"]})
    return merged
