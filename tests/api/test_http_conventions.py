"""HTTP conventions of the whole platform: the OpenAPI contract, conditional requests, bounds,
CORS, offline docs, correlation ids, free text. Discovered from the OpenAPI document where
possible, so a new route is covered without anyone remembering to add it."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from kit import PATIENT, Platform

from bsante.gateway.app import build_embedded
from bsante.gateway.settings import GatewaySettings
from bsante.platform.embedded import build_services, demo_gateway_settings

MEDECIN = ("medecin@tilleuls.demo", "Medecin-Tilleuls-2026")
TOO_BIG = str(2**63)
PUBLIC = {
    "/api/identity/auth/token",
    "/api/identity/auth/refresh",
    "/api/identity/auth/logout",
    "/api/identity/auth/cps/challenge",
    "/api/identity/auth/cps/token",
    "/api/identity/auth/psc/authorize",
    "/api/identity/auth/psc/callback",
    "/api/identity/auth/psc/logout",
    "/api/identity/.well-known/jwks.json",
    # RFC 6749: the client authenticates in the request itself (HTTP Basic), not with a bearer.
    "/api/identity/oauth/token",
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

# One platform per configuration for the module: starting one costs seconds. Each test
# creates its own records.
pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _started(data: Path, settings: GatewaySettings) -> AsyncIterator[Platform]:
    services = build_services(data)
    app = build_embedded(settings, services)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            yield Platform(client, services, data)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def platform(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    """The platform with the default (distributed) settings: no CORS origin."""
    async for started in _started(tmp_path_factory.mktemp("default"), GatewaySettings()):
        yield started


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def demo(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    """The platform as the embedded demo configures it (CORS, loopback proxy trusted)."""
    async for started in _started(tmp_path_factory.mktemp("demo"), demo_gateway_settings()):
        yield started


async def _post_patient(platform: Platform, headers: dict[str, str]) -> httpx.Response:
    response = await platform.client.post(
        "/api/patient/patients",
        params={"confirm_not_duplicate": "true"},
        json=PATIENT,
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response


async def _new_patient(platform: Platform, headers: dict[str, str]) -> dict[str, Any]:
    created: dict[str, Any] = (await _post_patient(platform, headers)).json()
    return created


async def _document(platform: Platform) -> dict[str, Any]:
    response = await platform.client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "responses" in op
    ]


async def _medecin(platform: Platform) -> dict[str, str]:
    return await platform.login(MEDECIN)


# -- the OpenAPI document -------------------------------------------------------------------


async def test_every_error_status_is_a_problem_and_fastapis_422_is_gone(
    platform: Platform,
) -> None:
    document = await _document(platform)
    assert "HTTPValidationError" not in document["components"]["schemas"]
    problem = document["components"]["schemas"]["Problem"]
    assert problem["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/FieldError"}
    for path, method, op in _operations(document):
        errors = {code: r for code, r in op["responses"].items() if code[0] in "45"}
        assert errors, (method, path)
        for code, response in errors.items():
            if path == "/api/identity/oauth/token" and code in ("400", "401"):
                # RFC 6749 section 5.2: the token endpoint's own error format, declared as such.
                assert "application/json" in response["content"], code
                continue
            assert response["content"] == {"application/problem+json": {"schema": PROBLEM_REF}}, (
                method,
                path,
                code,
            )


async def test_public_operations_need_no_token_and_the_others_declare_bearer(
    platform: Platform,
) -> None:
    document = await _document(platform)
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "security" not in document  # no blanket requirement
    for path, method, op in _operations(document):
        if path in PUBLIC or "/health/" in path:
            assert op["security"] == [], (method, path)
            assert "401" not in op["responses"] or path in PUBLIC
        else:
            assert op["security"] == [{"bearer": []}], (method, path)
            assert {"401", "403"} <= set(op["responses"]), (method, path)


async def test_headers_media_types_and_preconditions_are_declared(platform: Platform) -> None:
    paths = (await _document(platform))["paths"]
    read = paths["/api/patient/patients/{patient_id}"]["get"]
    assert "ETag" in read["responses"]["200"]["headers"]
    assert "304" in read["responses"]
    assert "Location" in paths["/api/patient/patients"]["post"]["responses"]["201"]["headers"]
    login = paths["/api/identity/auth/token"]["post"]["responses"]
    assert "Retry-After" in login["429"]["headers"] and "401" in login
    for conditional in ("traits", "contact"):
        op = paths[f"/api/patient/patients/{{patient_id}}/{conditional}"]["put"]
        if_match = next(p for p in op["parameters"] if p["name"].lower() == "if-match")
        assert if_match["required"] is True
        assert {"412", "428"} <= set(op["responses"])
    fhir = paths["/api/patient/patients/{patient_id}/fhir"]["get"]["responses"]["200"]
    assert list(fhir["content"]) == ["application/fhir+json"] and "ETag" in fhir["headers"]
    chart = "/api/forms/patients/{patient_id}/surveillance/chart."
    assert list(paths[chart + "svg"]["get"]["responses"]["200"]["content"]) == ["image/svg+xml"]
    assert list(paths[chart + "png"]["get"]["responses"]["200"]["content"]) == ["image/png"]
    ready = paths["/api/patient/health/ready"]["get"]["responses"]
    assert "503" in ready


def _target(document: dict[str, Any], link: dict[str, Any]) -> tuple[str, str]:
    """The (path, method) a link's operationRef points at in the document."""
    ref = link["operationRef"]
    assert ref.startswith("#/paths/"), ref
    pointer, method = ref[len("#/paths/") :].rsplit("/", 1)
    path = pointer.replace("~1", "/").replace("~0", "~")
    assert method in document["paths"][path], ref
    return path, method


def _follow(
    document: dict[str, Any], link: dict[str, Any], response: httpx.Response
) -> tuple[str, str | None]:
    """The URL and If-Match a link names after `response`: a small evaluator of the runtime
    expressions the links from a creation use ($response.body#/pointer, $response.header.X)."""
    path, _ = _target(document, link)
    if_match = None
    for key, expression in link["parameters"].items():
        where, name = key.split(".", 1)
        if expression.startswith("$response.body#/"):
            value: Any = response.json()
            for part in expression.removeprefix("$response.body#/").split("/"):
                value = value[part]
        elif expression.startswith("$response.header."):
            value = response.headers[expression.removeprefix("$response.header.")]
        else:
            pytest.fail(f"unexpected expression {expression}")
        if where == "path":
            path = path.replace(f"{{{name}}}", str(value))
        elif name.lower() == "if-match":
            if_match = str(value)
    return path, if_match


async def test_links_chain_a_created_resource_to_the_operations_taking_its_id(
    platform: Platform,
) -> None:
    document = await _document(platform)
    created = document["paths"]["/api/patient/patients"]["post"]["responses"]["201"]["links"]
    targets = {_target(document, link): link for link in created.values()}
    # Within the service, with the version for the conditional writes...
    assert ("/api/patient/patients/{patient_id}", "get") in targets
    traits = targets[("/api/patient/patients/{patient_id}/traits", "put")]
    assert traits["parameters"]["header.If-Match"] == "$response.header.ETag"
    # ... and across services: the patient's forms, documents, DMP state, audit.
    for path, method in (
        ("/api/forms/patients/{patient_id}/submissions", "post"),
        ("/api/documents/patients/{patient_id}/documents", "post"),
        ("/api/dmp-connector/patients/{patient_id}/dmp", "get"),
        ("/api/identity/audit/patients/{patient_id}", "get"),
    ):
        assert "header.If-Match" not in targets[(path, method)]["parameters"], path
    # Every link of the document names an operation that exists and takes what it passes;
    # service-to-service routes (a service token) are never a user's next step.
    for source, _method, op in _operations(document):
        for response in op["responses"].values():
            for link in (response.get("links") or {}).values():
                path, _ = _target(document, link)
                assert "/internal/" not in path, (source, path)
                for key in link["parameters"]:
                    if key.startswith("path."):
                        assert "{" + key.removeprefix("path.") + "}" in path, (source, path)

    # Followed as a client would, the links reach the record created a moment before.
    headers = await _medecin(platform)
    response = await _post_patient(platform, headers)
    url, _ = _follow(document, targets[("/api/patient/patients/{patient_id}", "get")], response)
    assert (await platform.client.get(url, headers=headers)).json()["id"] == response.json()["id"]
    url, if_match = _follow(document, traits, response)
    corrected = await platform.client.put(
        url,
        params={"confirm_not_duplicate": "true"},
        json={**PATIENT, "birth_given_names": "Marie Anne"},
        headers={**headers, "If-Match": str(if_match)},
    )
    assert corrected.status_code == 200, corrected.text
    forms = targets[("/api/forms/patients/{patient_id}/submissions", "post")]
    url, _ = _follow(document, forms, response)
    draft = await platform.client.post(url, json={"form_id": "aggir"}, headers=headers)
    assert draft.status_code == 201, draft.text


async def test_every_integer_parameter_is_bounded_and_2_63_is_refused(platform: Platform) -> None:
    """SQLite integers stop at 2**63: every number a client sends is bounded before the store."""
    headers = await _medecin(platform)
    patient = await _new_patient(platform, headers)
    document = await _document(platform)
    tried = 0
    for path, method, op in _operations(document):
        for param in op.get("parameters", []):
            schema = param.get("schema", {})
            types = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
            if "integer" not in types or param["in"] not in ("query", "header"):
                continue
            bounded = [schema, *schema.get("anyOf", [])]
            assert any("maximum" in s for s in bounded), (method, path, param["name"])
            url = re.sub(r"\{[a-z_]+\}", patient["id"], path)
            kwargs: dict[str, Any] = {"headers": dict(headers)}
            if param["in"] == "query":
                kwargs["params"] = {param["name"]: TOO_BIG}
            else:
                kwargs["headers"][param["name"]] = TOO_BIG
            response = await platform.client.request(method.upper(), url, **kwargs)
            assert 400 <= response.status_code < 500, (method, path, param["name"])
            tried += 1
    assert tried >= 5
    # If-Match carries a number too.
    response = await platform.client.put(
        f"/api/patient/patients/{patient['id']}/contact",
        json={},
        headers={**headers, "If-Match": f'"{TOO_BIG}"'},
    )
    assert response.status_code == 412


def _unbounded_integers(
    schemas: dict[str, Any], schema: dict[str, Any], path: str, seen: set[str]
) -> list[str]:
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[1]
        if name in seen:
            return []
        seen.add(name)
        return _unbounded_integers(schemas, schemas[name], name, seen)
    found = []
    if schema.get("type") == "integer" and "maximum" not in schema:
        found.append(path)
    for key, sub in schema.get("properties", {}).items():
        found += _unbounded_integers(schemas, sub, f"{path}.{key}", seen)
    for sub in [*schema.get("anyOf", []), *schema.get("allOf", []), *schema.get("oneOf", [])]:
        found += _unbounded_integers(schemas, sub, path, seen)
    if isinstance(schema.get("items"), dict):
        found += _unbounded_integers(schemas, schema["items"], f"{path}[]", seen)
    return found


async def test_every_integer_of_a_request_body_is_bounded(platform: Platform) -> None:
    document = await _document(platform)
    schemas = document["components"]["schemas"]
    unbounded = [
        found
        for path, method, op in _operations(document)
        for media in op.get("requestBody", {}).get("content", {}).values()
        for found in _unbounded_integers(schemas, media["schema"], f"{method} {path}", set())
    ]
    assert unbounded == []


# -- conditional requests -------------------------------------------------------------------


async def test_a_stale_if_match_is_412_on_every_conditional_write(platform: Platform) -> None:
    headers = await _medecin(platform)
    patient = await _new_patient(platform, headers)
    stale = {**headers, "If-Match": '"7"'}
    base = f"/api/patient/patients/{patient['id']}"
    writes = [
        ("PUT", f"{base}/traits?confirm_not_duplicate=true", PATIENT),
        ("PUT", f"{base}/contact", {"phone": "0102030405"}),
        ("POST", f"{base}/identity-document", {"document_type": "passeport"}),
    ]
    draft = await platform.client.post(
        f"/api/forms/patients/{patient['id']}/submissions",
        json={"form_id": "aggir"},
        headers=headers,
    )
    assert draft.status_code == 201, draft.text
    submission = f"/api/forms/submissions/{draft.json()['id']}"
    writes += [
        ("PUT", f"{submission}/answers", {"answers": {}}),
        ("POST", f"{submission}/complete", None),
    ]
    for method, url, body in writes:
        response = await platform.client.request(method, url, json=body, headers=stale)
        assert response.status_code == 412, (method, url, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    # Nothing changed: the versions are still 1.
    assert (await platform.client.get(base, headers=headers)).headers["etag"] == '"1"'
    assert (await platform.client.get(submission, headers=headers)).json()["version"] == 1


async def test_if_none_match_gives_304_while_the_etag_is_current(platform: Platform) -> None:
    headers = await _medecin(platform)
    patient = await _new_patient(platform, headers)
    url = f"/api/patient/patients/{patient['id']}"
    etag = (await platform.client.get(url, headers=headers)).headers["etag"]
    same = await platform.client.get(url, headers={**headers, "If-None-Match": etag})
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == etag
    changed = await platform.client.put(
        f"{url}/contact", json={"phone": "0102030405"}, headers={**headers, "If-Match": etag}
    )
    assert changed.status_code == 200
    again = await platform.client.get(url, headers={**headers, "If-None-Match": etag})
    assert again.status_code == 200 and again.headers["etag"] == '"2"'


# -- other HTTP semantics -------------------------------------------------------------------


async def test_a_body_that_is_not_json_is_415(platform: Platform) -> None:
    headers = await _medecin(platform)
    response = await platform.client.post(
        "/api/patient/patients",
        content=b"birth_name=DUPONT",
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert response.json()["errors"][0]["field"] == "Content-Type"
    fhir_json = await platform.client.post(
        "/api/patient/patients",
        params={"confirm_not_duplicate": "true"},
        json=PATIENT,
        headers={**headers, "Content-Type": "application/merge-patch+json"},
    )
    assert fhir_json.status_code == 201  # any +json media type is JSON


async def test_429_tells_when_to_retry(platform: Platform) -> None:
    for _ in range(30):
        response = await platform.client.post(
            "/api/identity/auth/token",
            json={"username": "infirmier@tilleuls.demo", "password": "wrong"},
        )
        if response.status_code == 429:
            break
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1


async def test_no_redirect_is_built_from_the_host_header(platform: Platform) -> None:
    headers = await _medecin(platform)
    for url in ("/api/patient/patients/", "/api/patient", "/api/identity/me/"):
        response = await platform.client.get(url, headers={**headers, "Host": "evil.example"})
        assert not 300 <= response.status_code < 400, url
        assert "location" not in response.headers
        assert "evil.example" not in response.text


async def test_correlation_ids_are_validated_before_being_echoed(platform: Platform) -> None:
    good = "web-" + uuid.uuid4().hex
    echoed = await platform.client.get("/health/live", headers={"X-Correlation-Id": good})
    assert echoed.headers["x-correlation-id"] == good
    for bad in ("x" * 50_000, "a\tb", "ok<script>", "é".encode()):
        response = await platform.client.get(
            "/api/identity/health/live", headers={"X-Correlation-Id": bad}
        )
        replaced = response.headers["x-correlation-id"]
        assert replaced not in (bad, "é") and len(replaced) <= 128
        uuid.UUID(replaced)


async def test_wrong_current_password_is_403_not_401(platform: Platform) -> None:
    headers = await _medecin(platform)
    response = await platform.client.put(
        "/api/identity/me/password",
        json={"current_password": "not-it", "new_password": "Another-Password-2026"},
        headers=headers,
    )
    assert response.status_code == 403
    assert response.json()["errors"][0]["field"] == "current_password"


@pytest.mark.parametrize(
    "bad",
    ["\x00", "\u202e", "\u2066", "\x1b[31m", "\u200f"],
    ids=["nul", "rlo", "lri", "esc", "rlm"],
)
async def test_free_text_refuses_control_and_bidi_characters(platform: Platform, bad: str) -> None:
    headers = await _medecin(platform)
    patient = await _new_patient(platform, headers)
    base = f"/api/patient/patients/{patient['id']}"
    refused = [
        await platform.client.put(
            f"{base}/contact",
            json={"address": {"lines": [f"1 rue{bad} des Lilas"], "city": "Lyon"}},
            headers={**headers, "If-Match": '"1"'},
        ),
        await platform.client.post(
            f"{base}/postits", json={"text": f"Allergie{bad}"}, headers=headers
        ),
        await platform.client.post(
            f"{base}/correspondents",
            json={"rpps": "10001000016", "role": "specialiste", "display_name": f"Dr{bad}X"},
            headers=headers,
        ),
    ]
    for response in refused:
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"]
    admin = await platform.login()
    user = await platform.client.post(
        "/api/identity/users",
        json={
            "username": "new@tilleuls.demo",
            "display_name": f"Nouvel{bad} Agent",
            "password": "Nouvel-Agent-2026-x",
        },
        headers=admin,
    )
    assert user.status_code == 422 and user.json()["errors"][0]["field"] == "display_name"
    # Line breaks stay allowed in a post-it.
    multiline = await platform.client.post(
        f"{base}/postits", json={"text": "Ligne 1\nLigne 2"}, headers=headers
    )
    assert multiline.status_code == 201


# -- front-end readiness --------------------------------------------------------------------


async def test_cors_allows_the_dev_origins_and_exposes_the_headers(demo: Platform) -> None:
    preflight = await demo.client.options(
        "/api/patient/patients",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization,if-match,content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
    headers = await demo.login(MEDECIN)
    created = await demo.client.post(
        "/api/patient/patients",
        params={"confirm_not_duplicate": "true"},
        json=PATIENT,
        headers={**headers, "Origin": "http://127.0.0.1:3000"},
    )
    exposed = {
        h.strip().lower() for h in created.headers["access-control-expose-headers"].split(",")
    }
    assert {"etag", "location", "retry-after", "x-correlation-id"} <= exposed
    stranger = await demo.client.get("/health/live", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in stranger.headers


async def test_the_environment_overrides_the_demo_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_CORS_ORIGINS", '["https://app.example"]')
    assert demo_gateway_settings().cors_origins == ["https://app.example"]
    assert demo_gateway_settings().trusted_proxies  # still the demo's loopback


async def test_no_cors_by_default(platform: Platform) -> None:
    """The distributed topology's default: no origin is allowed until one is configured."""
    assert GatewaySettings().cors_origins == []
    response = await platform.client.get(
        "/health/live", headers={"Origin": "http://localhost:5173"}
    )
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/api/patient/docs", "/api/forms/redoc"])
async def test_docs_work_offline(platform: Platform, page: str) -> None:
    html = await platform.client.get(page)
    assert html.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
    assert assets, html.text
    assert not re.search(r"https?://", html.text), "the page loads something from the network"
    prefix = page.rsplit("/", 1)[0]
    for asset in assets:
        assert asset.startswith(prefix + "/docs-assets/"), asset
        answered = await platform.client.get(asset)
        assert answered.status_code == 200 and answered.content, asset
    openapi_url = re.search(r"""(?:url|spec-url)[:=]\s*['"]([^'"]+)['"]""", html.text)
    assert openapi_url is not None
    assert (await platform.client.get(openapi_url.group(1))).status_code == 200
