"""The service manifest (`services.toml`): which services exist, their modules, ports and topics.

Read at run time (the gateway's default routes, the embedded platform, `topics.ALL`), and the
source of the repository files that list services:
`python -m bsante.contracts.manifest generate` rewrites them, `check` fails when one is stale.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Literal, cast

from bsante.contracts import helm_values

Kind = Literal["service", "gateway", "workstation-agent"]
KINDS: tuple[Kind, ...] = ("service", "gateway", "workstation-agent")
SOURCE = "contracts/src/bsante/contracts/services.toml"

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_MODULE = re.compile(r"^bsante\.[a-z_][a-z0-9_]*$")
_TOPIC = re.compile(r"^bsante\.[a-z0-9-]+\.v[0-9]+$")
_ENV_KEY = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SCOPE = re.compile(r"^[a-z][a-z-]*:[a-z]+$")
_FIELDS = {
    "kind",
    "module",
    "folder",
    "port",
    "produces",
    "consumes",
    "calls",
    "scopes",
    "external",
    "env",
}


class ManifestError(ValueError):
    """The manifest is malformed, or names something that does not exist."""


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    kind: Kind
    module: str
    folder: str
    port: int
    produces: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()
    # Service scopes its client-credentials token asks for (default: `<peer>:read` per call).
    scopes: tuple[str, ...] = ()
    external: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def env_prefix(self) -> str:
        """`sla-monitor` -> `SLA_MONITOR_`, as its settings class reads the environment."""
        return self.name.upper().replace("-", "_") + "_"

    @property
    def distribution(self) -> str:
        return f"bsante-{self.name}"

    def import_module(self, submodule: str = "") -> ModuleType:
        """`<module>` or `<module>.<submodule>`; a clear error when it is not installed."""
        target = f"{self.module}.{submodule}" if submodule else self.module
        try:
            return importlib.import_module(target)
        except ModuleNotFoundError as error:
            if error.name is None or not target.startswith(error.name):
                raise  # the module exists but one of its own imports is missing
            raise ManifestError(
                f"{SOURCE}: service {self.name!r} names module {target!r}, which is not "
                f"installed (is {self.folder} there, and installed with `make dev`?)"
            ) from None


@dataclass(frozen=True)
class Manifest:
    services: tuple[ServiceEntry, ...]
    # Parts that are libraries for now (installed and type-checked, not run or deployed),
    # e.g. a service's domain toolkit before the service itself exists.
    libraries: tuple[str, ...] = ()

    def get(self, name: str) -> ServiceEntry:
        for entry in self.services:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def of_kind(self, *kinds: Kind) -> list[ServiceEntry]:
        return [entry for entry in self.services if entry.kind in kinds]

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic produced or consumed, in the order the manifest first names them."""
        seen: dict[str, None] = {}
        for entry in self.services:
            seen.update(dict.fromkeys(entry.produces))
        for entry in self.services:
            seen.update(dict.fromkeys(entry.consumes))
        return tuple(seen)

    def gateway_routes(self, port: int = 8080) -> dict[str, str]:
        """The gateway's default map: each service at its container name."""
        return {e.name: f"http://{e.name}:{port}" for e in self.of_kind("service")}


def _strings(
    name: str, key: str, value: object, pattern: re.Pattern[str] | None
) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError(f"{SOURCE}: services.{name}.{key} must be a list of strings")
    items = tuple(cast(list[str], value))
    for item in items:
        if pattern is not None and not pattern.match(item):
            raise ManifestError(f"{SOURCE}: services.{name}.{key}: {item!r} is not well formed")
    if len(set(items)) != len(items):
        raise ManifestError(f"{SOURCE}: services.{name}.{key} names an item twice")
    return items


def _entry(name: str, raw: object) -> ServiceEntry:
    if not _NAME.match(name):
        raise ManifestError(f"{SOURCE}: {name!r} is not a service name (lower-case, dashes)")
    if not isinstance(raw, dict):
        raise ManifestError(f"{SOURCE}: services.{name} must be a table")
    table = cast(dict[str, object], raw)
    unknown = sorted(set(table) - _FIELDS)
    if unknown:
        raise ManifestError(f"{SOURCE}: services.{name}: unknown keys {', '.join(unknown)}")
    missing = sorted({"kind", "module", "folder", "port"} - set(table))
    if missing:
        raise ManifestError(f"{SOURCE}: services.{name}: missing {', '.join(missing)}")
    kind, module, folder, port = table["kind"], table["module"], table["folder"], table["port"]
    if kind not in KINDS:
        raise ManifestError(f"{SOURCE}: services.{name}.kind must be one of {', '.join(KINDS)}")
    if not isinstance(module, str) or not _MODULE.match(module):
        raise ManifestError(f"{SOURCE}: services.{name}.module must be bsante.<package>")
    if not isinstance(folder, str) or not folder.startswith("services/"):
        raise ManifestError(f"{SOURCE}: services.{name}.folder must be services/<folder>")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise ManifestError(f"{SOURCE}: services.{name}.port must be a port number")
    env = table.get("env", {})
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and _ENV_KEY.match(k) and isinstance(v, str) for k, v in env.items()
    ):
        raise ManifestError(f"{SOURCE}: services.{name}.env must map UPPER_CASE names to strings")
    calls = _strings(name, "calls", table.get("calls", []), _NAME)
    return ServiceEntry(
        name=name,
        kind=kind,
        module=module,
        folder=folder,
        port=port,
        produces=_strings(name, "produces", table.get("produces", []), _TOPIC),
        consumes=_strings(name, "consumes", table.get("consumes", []), _TOPIC),
        calls=calls,
        scopes=_strings(
            name, "scopes", table.get("scopes", [f"{peer}:read" for peer in calls]), _SCOPE
        ),
        external=_strings(name, "external", table.get("external", []), None),
        env=cast(dict[str, str], env),
    )


def parse(text: str) -> Manifest:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ManifestError(f"{SOURCE}: {error}") from None
    if not set(document) <= {"services", "libraries"} or not isinstance(
        document.get("services"), dict
    ):
        raise ManifestError(f"{SOURCE}: expected [services.<name>] tables and a libraries list")
    entries = tuple(_entry(name, raw) for name, raw in document["services"].items())
    libraries = document.get("libraries", [])
    if not isinstance(libraries, list) or not all(
        isinstance(f, str) and f.startswith("services/") for f in libraries
    ):
        raise ManifestError(f"{SOURCE}: libraries must list services/<folder> folders")
    manifest = Manifest(entries, tuple(libraries))
    names = {e.name for e in entries}
    for entry in entries:
        unknown = sorted(set(entry.calls) - names)
        if unknown:
            raise ManifestError(
                f"{SOURCE}: services.{entry.name}.calls names unknown {', '.join(unknown)}"
            )
    for attribute, values in (
        ("module", [e.module for e in entries]),
        ("folder", [e.folder for e in entries]),
    ):
        if len(set(values)) != len(values):
            raise ManifestError(f"{SOURCE}: two services share a {attribute}")
    if len(manifest.of_kind("gateway")) != 1:
        raise ManifestError(f"{SOURCE}: exactly one service must be of kind gateway")
    return manifest


@cache
def load() -> Manifest:
    """The installed manifest (packaged with bsante-contracts, so every image has it)."""
    return parse(resources.files("bsante.contracts").joinpath("services.toml").read_text())


# -- files generated from the manifest ----------------------------------------------------------

GENERATED = f"generated from {SOURCE} by `make contracts`: edit that file, not this block"
BEGIN, END = f"# BEGIN {GENERATED}", "# END generated"


def _parts(m: Manifest) -> str:
    folders = " ".join([*(e.folder for e in m.services), *m.libraries])
    return f"PARTS  := contracts chassis {folders} platform"


def _mypy_path(m: Manifest) -> str:
    folders = [*(e.folder for e in m.services), *m.libraries]
    paths = ["contracts/src", "chassis/src", *(f"{f}/src" for f in folders)]
    return f'mypy_path = "{":".join([*paths, "platform/src"])}"'


def _platform_dependencies(m: Manifest) -> str:
    lines = "".join(f'    "{e.distribution}",\n' for e in m.of_kind("gateway", "service"))
    return f"dependencies = [\n{lines}]"


def _scalar(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./:?=-]+", value) and not re.fullmatch(
        r"[0-9]+|true|false|yes|no|on|off|null", value, re.IGNORECASE
    ):
        return value
    return json.dumps(value)


def _image_args(entry: ServiceEntry) -> str:
    return f"{{ SERVICE: {entry.folder.removeprefix('services/')}, MODULE: {entry.module} }}"


SECRETS_DIR = "/run/bsante"


def _service_clients(m: Manifest) -> list[ServiceEntry]:
    """Services that call others: each is a service client with its own secret."""
    return [e for e in m.of_kind("service") if e.calls]


def _compose_services(m: Manifest) -> str:
    clients = _service_clients(m)
    blocks: list[str] = []
    if clients:
        # Service-client secrets (client credentials): drawn once into a volume that identity
        # and the calling services mount read-only; identity hashes the files at start.
        writes = "; ".join(
            f"(d / '{c.name}.secret').exists() or (d / '{c.name}.secret')"
            ".write_text(secrets.token_urlsafe(32))"
            for c in clients
        )
        blocks.append(
            "  secrets-init:\n"
            "    build:\n"
            "      <<: *build\n"
            "      args: { SERVICE: identity, MODULE: bsante.identity }\n"
            "    image: bsante/identity:dev\n"
            '    user: "0"\n'
            '    entrypoint: ["python", "-c"]\n'
            "    command:\n"
            "      - >-\n"
            f"        import pathlib, secrets; d = pathlib.Path('{SECRETS_DIR}'); {writes}\n"
            "    volumes:\n"
            f"      - service-secrets:{SECRETS_DIR}\n"
            '    restart: "no"\n'
        )
    for e in m.of_kind("service"):
        p = e.env_prefix
        secret_env: dict[str, str] = {}
        if e in clients:
            secret_env = {
                f"{p}SERVICE_TOKEN_URL": "http://identity:8080/oauth/token",
                f"{p}SERVICE_CLIENT_SECRET_FILE": f"{SECRETS_DIR}/{e.name}.secret",
            }
        if e.name == "identity" and clients:
            registry = {
                c.name: {
                    "scopes": list(c.scopes),
                    "secret_file": f"{SECRETS_DIR}/{c.name}.secret",
                }
                for c in clients
            }
            secret_env = {f"{p}SERVICE_CLIENTS": json.dumps(registry, separators=(",", ":"))}
        env = {
            **secret_env,
            f"{p}STORE_URL": "mongodb://mongo:27017/?replicaSet=rs0",
            f"{p}STORE_DATABASE": "bsante_" + e.name.replace("-", "_"),
            f"{p}BUS_URL": "kafka://kafka:9092",
            f"{p}JWKS_URL": "http://identity:8080/.well-known/jwks.json",
            **{
                f"{p}{peer.upper().replace('-', '_')}_URL": f"http://{peer}:8080"
                for peer in e.calls
            },
            **{f"{p}{key}": value for key, value in e.env.items()},
            f"{p}PORT": "8080",
            f"{p}LOG_LEVEL": "INFO",
        }
        if secret_env:
            depends = (
                "    depends_on:\n"
                "      <<: *engines\n"
                "      secrets-init:\n"
                "        condition: service_completed_successfully\n"
                "    volumes:\n"
                f"      - service-secrets:{SECRETS_DIR}:ro\n"
            )
        else:
            depends = "    depends_on: *engines\n"
        blocks.append(
            f"  {e.name}:\n"
            "    build:\n"
            "      <<: *build\n"
            f"      args: {_image_args(e)}\n"
            f"    image: bsante/{e.name}:dev\n"
            + depends
            + "    environment:\n"
            + "".join(f"      {k}: {_scalar(v)}\n" for k, v in env.items())
            + "    restart: unless-stopped\n"
        )
    gateway = m.of_kind("gateway")[0]
    p = gateway.env_prefix
    routes = json.dumps(m.gateway_routes(), separators=(",", ":"))
    blocks.append(
        "  # The gateway proxies and streams live events: no store; the bus for /events.\n"
        f"  {gateway.name}:\n"
        "    build:\n"
        "      <<: *build\n"
        f"      args: {_image_args(gateway)}\n"
        f"    image: bsante/{gateway.name}:dev\n"
        "    depends_on:\n"
        + "".join(f"      - {e.name}\n" for e in m.of_kind("service"))
        + "    environment:\n"
        f'      {p}PORT: "8080"\n'
        f"      {p}SERVICES: '{routes}'\n"
        f'      {p}PROXY_TIMEOUT_SECONDS: "30"\n'
        f"      {p}BUS_URL: kafka://kafka:9092\n"
        f"      {p}JWKS_URL: http://identity:8080/.well-known/jwks.json\n"
        f"      {p}LOG_LEVEL: INFO\n"
        "    ports:\n"
        f'      - "{gateway.port}:8080"\n'
        "    restart: unless-stopped\n"
    )
    return "\n".join(blocks)


def _compose_topics(m: Manifest) -> str:
    return f"for t in {' '.join(m.topics)};"


def _bake(m: Manifest) -> str:
    images = m.of_kind("service", "gateway")
    targets = "".join(
        f'\ntarget "{e.name}" {{\n'
        '  inherits = ["_service"]\n'
        f'  args     = {{ SERVICE = "{e.folder.removeprefix("services/")}", '
        f'MODULE = "{e.module}" }}\n'
        f'  tags     = ["bsante/{e.name}:${{TAG}}"]\n'
        "}\n"
        for e in images
    )
    return (
        f"# Generated from {SOURCE} by `make contracts`: edit that file, not this one.\n"
        "# Build the service images: `docker buildx bake -f deploy/docker-bake.hcl` (from the\n"
        "# repository root). One target: `docker buildx bake -f deploy/docker-bake.hcl patient`.\n"
        '\nvariable "TAG" {\n  default = "dev"\n}\n'
        '\ngroup "default" {\n'
        f"  targets = [{', '.join(json.dumps(e.name) for e in images)}]\n"
        "}\n"
        '\ntarget "_service" {\n  context    = "."\n  dockerfile = "deploy/Dockerfile"\n}\n'
        + targets
    )


def _replace_line(pattern: str, line: Callable[[Manifest], str]) -> Callable[[str, Manifest], str]:
    def apply(text: str, m: Manifest) -> str:
        new, count = re.subn(pattern, lambda _: line(m), text, count=1, flags=re.MULTILINE)
        if count != 1:
            raise ManifestError(f"no line matching {pattern!r} to regenerate")
        return new

    return apply


def _replace_block(block: Callable[[Manifest], str]) -> Callable[[str, Manifest], str]:
    """The lines between the BEGIN and END marker lines become `block`."""

    def apply(text: str, m: Manifest) -> str:
        lines = text.splitlines(keepends=True)
        starts = [i for i, line in enumerate(lines) if BEGIN in line]
        ends = [i for i, line in enumerate(lines) if line.strip() == END]
        if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
            raise ManifestError(f"no `{BEGIN}` ... `{END}` block to regenerate")
        return "".join([*lines[: starts[0] + 1], block(m), *lines[ends[0] :]])

    return apply


def _replace_blocks(*blocks: Callable[[Manifest], str]) -> Callable[[str, Manifest], str]:
    """The n-th BEGIN ... END block becomes `blocks[n]` (a file with several blocks)."""

    def apply(text: str, m: Manifest) -> str:
        lines = text.splitlines(keepends=True)
        starts = [i for i, line in enumerate(lines) if BEGIN in line]
        ends = [i for i, line in enumerate(lines) if line.strip() == END]
        pairs = list(zip(starts, ends, strict=False))
        if (
            len(starts) != len(blocks)
            or len(ends) != len(blocks)
            or any(end < start for start, end in pairs)
            or any(pairs[i][1] > pairs[i + 1][0] for i in range(len(pairs) - 1))
        ):
            raise ManifestError(f"expected {len(blocks)} `{BEGIN}` ... `{END}` blocks")
        out: list[str] = []
        previous = 0
        for (start, end), block in zip(pairs, blocks, strict=True):
            out += [*lines[previous : start + 1], block(m)]
            previous = end
        return "".join([*out, *lines[previous:]])

    return apply


def _whole(render: Callable[[Manifest], str]) -> Callable[[str, Manifest], str]:
    return lambda _, m: render(m)


def _chain(*steps: Callable[[str, Manifest], str]) -> Callable[[str, Manifest], str]:
    def apply(text: str, m: Manifest) -> str:
        for step in steps:
            text = step(text, m)
        return text

    return apply


TARGETS: dict[str, Callable[[str, Manifest], str]] = {
    "Makefile": _replace_line(r"^PARTS\s*:=.*$", _parts),
    "pyproject.toml": _replace_line(r"^mypy_path = .*$", _mypy_path),
    "platform/pyproject.toml": _replace_line(
        r"^dependencies = \[\n(?:.*\n)*?\]", _platform_dependencies
    ),
    "deploy/compose.yaml": _chain(
        _replace_line(r"for t in [^;]*;", _compose_topics), _replace_block(_compose_services)
    ),
    "deploy/docker-bake.hcl": _whole(_bake),
    f"{helm_values.CHART}/files/manifest.json": _whole(helm_values.manifest_json),
    f"{helm_values.CHART}/values.schema.json": _whole(helm_values.schema_json),
    f"{helm_values.CHART}/values.yaml": _replace_blocks(
        helm_values.external_block, helm_values.services_block
    ),
}


def rendered(root: Path, manifest: Manifest) -> dict[Path, str]:
    for entry in manifest.services:
        if not (root / entry.folder / "pyproject.toml").is_file():
            raise ManifestError(
                f"{SOURCE}: services.{entry.name}.folder {entry.folder} has no pyproject.toml"
            )
        declared = tomllib.loads((root / entry.folder / "pyproject.toml").read_text())
        if declared.get("project", {}).get("name") != entry.distribution:
            raise ManifestError(
                f"{entry.folder}/pyproject.toml must name the distribution {entry.distribution}"
            )
    return {
        root / name: apply((root / name).read_text(), manifest) for name, apply in TARGETS.items()
    }


def stale(root: Path, manifest: Manifest) -> list[str]:
    """The generated files that differ from what the manifest says."""
    return sorted(
        str(path.relative_to(root))
        for path, text in rendered(root, manifest).items()
        if path.read_text() != text
    )


def _as_json(entry: ServiceEntry) -> dict[str, object]:
    return {
        "name": entry.name,
        "kind": entry.kind,
        "module": entry.module,
        "folder": entry.folder,
        "port": entry.port,
        "env_prefix": entry.env_prefix,
        "produces": list(entry.produces),
        "consumes": list(entry.consumes),
        "calls": list(entry.calls),
        "scopes": list(entry.scopes),
        "external": list(entry.external),
        "env": dict(entry.env),
    }


def _repository_root() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / SOURCE).is_file():
            return parent
    raise ManifestError("not in a checkout of the repository (generate/check need one)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["generate", "check", "list", "json"])
    parser.add_argument("--root", type=Path, help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    try:
        if args.command in ("json", "list") and args.root is None:
            manifest = load()  # the installed one: works in an image too
        else:
            root: Path = args.root or _repository_root()
            manifest = parse((root / SOURCE).read_text())
        if args.command == "json":
            # For tools that read no TOML (a Helm values generator, scripts).
            document = {
                "services": [_as_json(e) for e in manifest.services],
                "topics": list(manifest.topics),
            }
            print(json.dumps(document, indent=2))
            return 0
        if args.command == "list":
            for e in manifest.services:
                print(f"{e.name:16} {e.kind:18} {e.module:22} {e.folder:24} {e.port}")
            return 0
        if args.command == "check":
            outdated = stale(root, manifest)
            if outdated:
                print(
                    "Out of date with the service manifest: "
                    + ", ".join(outdated)
                    + "\nRun `make contracts` (python -m bsante.contracts.manifest generate).",
                    file=sys.stderr,
                )
                return 1
            return 0
        for path, text in rendered(root, manifest).items():
            if path.read_text() != text:
                path.write_text(text)
                print(f"wrote {path.relative_to(root)}")
    except ManifestError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
