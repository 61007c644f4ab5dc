"""An OpenAPI document that says what the API really answers: problems, headers, security.

FastAPI documents the success response and its own 422. `finalize_openapi(app)` rewrites each
operation from what its route is made of, so a new route is documented without anyone
remembering to:

- a JSON body → 400 (malformed JSON), 413, 415, 422; any parameter → 422;
- `current_principal` / `allowed(...)` in its dependencies → bearer security, 401, 403;
  others are public (no security requirement);
- path parameters → 404; an `If-Match` header → 412 (and 428 with the header required when
  the route declares 428); an unsafe method → 409 (a concurrent write);
- a success schema with a `version` → `ETag` header (and 304 for `If-None-Match` on reads);
  201 → `Location`; 429 → `Retry-After`; 503 on readiness.

A route declares what cannot be derived with `responses=problems(409, 429, ...)`. Every
error status is `application/problem+json` with the `Problem` schema; 422 included, with
`errors[].field`.

A route whose response carries the id other routes take as a path parameter says so with
`openapi_extra=creates("patient_id")`: its success responses get OpenAPI links to every
operation of the service taking `{patient_id}` (the gateway extends them to the other
services), so a client, and schemathesis's stateful phase, can chain create → read → edit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from bsante.chassis.auth import current_principal, current_service
from bsante.chassis.errors import PROBLEM_JSON, TITLES

PROBLEM = "Problem"
FIELD_ERROR = "FieldError"
# Schemas every service shares; the gateway's merged document keeps them unprefixed.
SHARED_SCHEMAS = (PROBLEM, FIELD_ERROR)
SECURITY_SCHEME = "bearer"
UNSAFE = {"post", "put", "patch", "delete"}
BODY_STATUSES = (400, 413, 415, 422)
MAX_SAFE_INTEGER = 2**53 - 1
CREATES = "x-bsante-creates"
PATH_PARAMETER = re.compile(r"{([^}]+)}")

PROBLEM_SCHEMAS: dict[str, Any] = {
    FIELD_ERROR: {
        "title": FIELD_ERROR,
        "type": "object",
        "description": "One refused field: `field` is its dotted path (or a header name).",
        "required": ["field", "message"],
        "properties": {
            "field": {"type": "string"},
            "message": {"type": "string"},
            "location": {"type": "string"},
            "type": {"type": "string"},
        },
        "additionalProperties": True,
    },
    PROBLEM: {
        "title": PROBLEM,
        "type": "object",
        "description": "RFC 9457 problem details.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {"type": "array", "items": {"$ref": f"#/components/schemas/{FIELD_ERROR}"}},
        },
        "additionalProperties": True,
    },
}

HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {
        "description": "Version of the resource; send it back in If-Match to change it",
        "schema": {"type": "string", "pattern": '^(W/)?"[0-9]+"$'},
    },
    "Location": {"description": "Where the created resource is", "schema": {"type": "string"}},
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 0},
    },
}


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": TITLES.get(status, "Error"),
        "content": {PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{PROBLEM}"}}},
    }


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route's statuses that cannot be derived from its signature."""
    return {status: _problem_response(status) for status in statuses}


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every API route of the app, included routers flattened (with their prefixes and
    router-level dependencies)."""
    found: list[APIRoute] = []
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            found.append(context)  # type: ignore[arg-type]  # proxies the effective APIRoute
    return found


def creates(parameter: str, pointer: str = "/id") -> dict[str, Any]:
    """`openapi_extra=` for a route whose response body, at JSON `pointer`, is the id other
    routes take as their `{parameter}` path parameter (links, see the module docstring)."""
    return {CREATES: {"parameter": parameter, "pointer": pointer}}


def operation_ref(path: str, method: str) -> str:
    """A link's `operationRef` to an operation of the same document (JSON pointer)."""
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def path_parameters(path: str) -> list[str]:
    return PATH_PARAMETER.findall(path)


def link_to(
    source_path: str,
    target_path: str,
    parameter: str,
    expression: str,
    *,
    if_match: bool = False,
) -> dict[str, Any] | None:
    """The link's parameters to `target_path`: `parameter` from `expression`, the target's other
    path parameters from the source request's own; None when the source cannot name them all.
    `if_match`: the target changes the linked resource and the source response's ETag is its
    version (sent back in If-Match)."""
    known = set(path_parameters(source_path))
    parameters = {f"path.{parameter}": expression}
    for name in path_parameters(target_path):
        if name == parameter:
            continue
        if name not in known:
            return None
        parameters[f"path.{name}"] = f"$request.path.{name}"
    if if_match:
        parameters["header.If-Match"] = "$response.header.ETag"
    return {"parameters": parameters}


def takes_if_match(operation: dict[str, Any]) -> bool:
    return any(
        p.get("in") == "header" and str(p.get("name", "")).lower() == "if-match"
        for p in operation.get("parameters", [])
    )


def _add_links(document: dict[str, Any]) -> None:
    """Turn each `creates(...)` declaration into OpenAPI links (module docstring)."""
    paths: dict[str, Any] = document.get("paths", {})
    for path, item in paths.items():
        for method, op in item.items():
            declared = op.pop(CREATES, None) if isinstance(op, dict) else None
            if not declared:
                continue
            parameter, pointer = declared["parameter"], declared["pointer"]
            for _, response in _success(op):
                if not response.get("content"):
                    continue
                etagged = "ETag" in response.get("headers", {})
                links = response.setdefault("links", {})
                for target_path, target_item in paths.items():
                    # Service-to-service routes take a service token, never the user's.
                    if target_path.startswith("/internal/"):
                        continue
                    if parameter not in path_parameters(target_path):
                        continue
                    for target_method, target in target_item.items():
                        if (target_path, target_method) == (path, method):
                            continue
                        link = link_to(
                            path,
                            target_path,
                            parameter,
                            f"$response.body#{pointer}",
                            # The version of the resource the target's last parameter names.
                            if_match=etagged
                            and takes_if_match(target)
                            and path_parameters(target_path)[-1] == parameter,
                        )
                        if link is not None:
                            name = target.get("operationId") or f"{target_method}{target_path}"
                            links[re.sub(r"[^A-Za-z0-9._-]", "_", name)] = {
                                "operationRef": operation_ref(target_path, target_method),
                                **link,
                            }
                if not links:
                    del response["links"]


def etag_response(status: int = 200) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that sends an ETag its response schema does not show."""
    return {status: {"description": "Successful Response", "headers": {"ETag": HEADERS["ETag"]}}}


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dep in dependant.dependencies:
        yield dep
        yield from _dependencies(dep)


def _calls(route: APIRoute) -> list[Callable[..., Any]]:
    return [d.call for d in _dependencies(route.dependant) if d.call is not None]


def is_guarded(route: APIRoute) -> bool:
    """The route needs a caller: it depends on `current_principal` (directly or via `allowed`),
    or on a service client's token (`service_scope`)."""
    return any(call is current_principal or call is current_service for call in _calls(route))


def _header_names(route: APIRoute) -> set[str]:
    names = set()
    for dep in [route.dependant, *_dependencies(route.dependant)]:
        for param in dep.header_params:
            names.add((param.alias or param.name).replace("_", "-").lower())
    return names


def _has_parameters(route: APIRoute) -> bool:
    return any(
        d.path_params or d.query_params or d.header_params or d.cookie_params
        for d in [route.dependant, *_dependencies(route.dependant)]
    )


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        found: dict[str, Any] = document["components"]["schemas"].get(ref.rsplit("/", 1)[1], {})
        return found
    return schema


def _carries_version(document: dict[str, Any], schema: dict[str, Any], depth: int = 0) -> bool:
    """The schema (or one it nests) has a `version`: the route sends the ETag of it."""
    resolved = _resolve(document, schema)
    props = resolved.get("properties", {})
    if "version" in props:
        return True
    if depth >= 1:
        return False
    return any(_carries_version(document, p, depth + 1) for p in props.values())


def _success(operation: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(code, r) for code, r in operation.get("responses", {}).items() if code[:1] == "2"]


def _process(document: dict[str, Any], route: APIRoute, method: str, op: dict[str, Any]) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    declared = {int(code) for code in responses if code.isdigit() and int(code) >= 400}
    statuses: set[int] = set()
    if route.body_field is not None:
        statuses.update(BODY_STATUSES)
    if _has_parameters(route):
        statuses.add(422)
    if is_guarded(route):
        statuses.update((401, 403))
        op["security"] = [{SECURITY_SCHEME: []}]
    else:
        op["security"] = []
    if route.dependant.path_params:
        statuses.add(404)
    headers = _header_names(route)
    if "if-match" in headers:
        statuses.add(412)
    if method in UNSAFE:
        statuses.add(409)
    if route.path.endswith("/health/ready"):
        statuses.add(503)
    statuses |= declared
    if 428 in statuses:
        for param in op.get("parameters", []):
            if param.get("in") == "header" and param.get("name", "").lower() == "if-match":
                param["required"] = True
                param["schema"] = {"type": "string", "maxLength": 50}
    etagged = any(
        _carries_version(document, media.get("schema", {}))
        for _, response in _success(op)
        for media in response.get("content", {}).values()
    ) or any("ETag" in r.get("headers", {}) for _, r in _success(op))
    for code, response in _success(op):
        response_headers = response.setdefault("headers", {})
        if etagged:
            response_headers.setdefault("ETag", HEADERS["ETag"])
        if code == "201":
            response_headers.setdefault("Location", HEADERS["Location"])
        if not response_headers:
            del response["headers"]
    if etagged and method == "get":
        responses["304"] = {
            "description": "Not Modified: the version named by If-None-Match is current",
            "headers": {"ETag": HEADERS["ETag"]},
        }
        if "if-none-match" not in headers:
            op.setdefault("parameters", []).append(
                {
                    "name": "If-None-Match",
                    "in": "header",
                    "required": False,
                    "description": "The ETag you hold: 304 when it is still current",
                    "schema": {"type": "string", "maxLength": 200},
                }
            )
    for status in sorted(statuses):
        own = responses.get(str(status)) or {}
        if _own_error_format(own):
            continue  # the route answers this status in its own declared format (OAuth's)
        response = {**_problem_response(status), **_extra(own)}
        response["content"] = _problem_response(status)["content"]
        if status == 429:
            response["headers"] = {"Retry-After": HEADERS["Retry-After"]}
        responses[str(status)] = response
    op["responses"] = dict(sorted(responses.items()))


def _own_error_format(response: dict[str, Any]) -> bool:
    """The route declared this error with its own model, not problem+json (RFC 6749's token
    endpoint answers its errors as `application/json`): kept as declared."""
    content = response.get("content") or {}
    if not content or "application/problem+json" in content:
        return False
    refs = [str((media or {}).get("schema", {}).get("$ref", "")) for media in content.values()]
    # FastAPI's own 422 (HTTPValidationError) is replaced like everything else.
    return all(
        ref and not ref.endswith("/Problem") and not ref.endswith("HTTPValidationError")
        for ref in refs
    )


def _extra(response: dict[str, Any] | None) -> dict[str, Any]:
    """What a route declared for an error status besides its content (its description)."""
    if not response:
        return {}
    return {k: v for k, v in response.items() if k == "description" and v}


def _drop_unused(document: dict[str, Any]) -> None:
    schemas = document.get("components", {}).get("schemas", {})
    text = str(document.get("paths", {}))
    for name in ("HTTPValidationError", "ValidationError"):
        if name in schemas and f"#/components/schemas/{name}'" not in text:
            del schemas[name]
    # ValidationError is referenced only by HTTPValidationError.
    if "HTTPValidationError" not in schemas:
        schemas.pop("ValidationError", None)


def build_document(app: FastAPI, base: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`base()` is FastAPI's own document; the result says what each route really answers."""
    document = base()
    components = document.setdefault("components", {})
    components.setdefault("schemas", {}).update(PROBLEM_SCHEMAS)
    components["securitySchemes"] = {
        SECURITY_SCHEME: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    routes = {
        (route.path_format, method.lower()): route
        for route in api_routes(app)
        if route.include_in_schema
        for method in route.methods or ()
    }
    for path, item in document.get("paths", {}).items():
        for method, op in item.items():
            route = routes.get((path, method))
            if route is not None and isinstance(op, dict):
                _process(document, route, method, op)
    _add_links(document)
    _drop_unused(document)
    return document


def finalize_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` return the rewritten document (built once, then cached)."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_document(app, base)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
