"""One OpenAPI document for the front-end teams, merged from every service's own."""

from __future__ import annotations

import json
from typing import Any

from bsante.chassis.openapi import (
    SECURITY_SCHEME,
    SHARED_SCHEMAS,
    link_to,
    operation_ref,
    path_parameters,
    problems,
)

REF = "#/components/schemas/"
PATHS_REF = "#/paths/"


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


def _prefix_links(item: dict[str, Any], name: str) -> None:
    """A service's links point at its own paths; in the merged document they are prefixed."""
    prefix = PATHS_REF + f"/api/{name}".replace("/", "~1")
    for operation in item.values():
        if not isinstance(operation, dict):
            continue
        for response in operation.get("responses", {}).values():
            for link in (response.get("links") or {}).values():
                ref = link.get("operationRef", "")
                if ref.startswith(PATHS_REF):
                    link["operationRef"] = prefix + ref[len(PATHS_REF) :]


def _link_across_services(paths: dict[str, Any], owners: dict[str, str]) -> None:
    """An id a service's links pass as `{patient_id}` (say) also names the patient in the other
    services' paths: the created patient's forms, documents, DMP state are linked too."""
    for source_path, item in paths.items():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for response in operation.get("responses", {}).values():
                links = response.get("links")
                if not links:
                    continue
                produced = {
                    key.removeprefix("path."): value
                    for link in links.values()
                    for key, value in link.get("parameters", {}).items()
                    if key.startswith("path.") and str(value).startswith("$response.body")
                }
                for parameter, expression in sorted(produced.items()):
                    for target_path, target_item in paths.items():
                        owner = owners[target_path]
                        if owner == owners[source_path] or parameter not in path_parameters(
                            target_path
                        ):
                            continue
                        # Service-to-service routes take a service token, never the user's.
                        if target_path.startswith(f"/api/{owner}/internal/"):
                            continue
                        for method, target in target_item.items():
                            link = link_to(source_path, target_path, parameter, expression)
                            if link is None or not isinstance(target, dict):
                                continue
                            name = f"{owner}.{target.get('operationId') or method}"
                            links[name] = {
                                "operationRef": operation_ref(target_path, method),
                                **link,
                            }


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
    owners: dict[str, str] = {}
    for name, document in sorted(documents.items()):
        prefix = "".join(part.capitalize() for part in name.split("-")) + "_"
        renamed = _prefix_schema_names(document, prefix)
        for path, item in renamed.get("paths", {}).items():
            _prefix_links(item, name)
            for operation in item.values():
                if isinstance(operation, dict) and "responses" in operation:
                    # In the distributed topology the gateway answers 503 when a service
                    # does not (upstream-down), on any operation.
                    operation["responses"].setdefault("503", _problem_response(503))
            merged["paths"][f"/api/{name}{path}"] = item
            owners[f"/api/{name}{path}"] = name
        merged["components"]["schemas"].update(renamed.get("components", {}).get("schemas", {}))
        merged["tags"].append({"name": name, "description": document["info"]["title"]})
    _link_across_services(merged["paths"], owners)
    return merged
