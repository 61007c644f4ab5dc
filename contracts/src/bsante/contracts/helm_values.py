"""The Helm chart's files generated from the service manifest (`make contracts`).

`deploy/helm/bsante/files/manifest.json` (the facts the templates loop over: services, their
topics, calls, scopes and external systems), the `services:` and `networkPolicy.external:`
blocks of `values.yaml`, and `values.schema.json`, whose `additionalProperties: false` makes a
misspelt key fail `helm install`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bsante.contracts.manifest import Manifest, ServiceEntry

CHART = "deploy/helm/bsante"


def deployed(m: Manifest) -> list[ServiceEntry]:
    """What the chart deploys: the services and the gateway (not workstation agents)."""
    return m.of_kind("service", "gateway")


def external_systems(m: Manifest) -> list[str]:
    seen: dict[str, None] = {}
    for entry in deployed(m):
        seen.update(dict.fromkeys(entry.external))
    return list(seen)


def manifest_json(m: Manifest) -> str:
    document = {
        "services": [
            {
                "name": e.name,
                "kind": e.kind,
                "module": e.module,
                "env_prefix": e.env_prefix,
                "calls": list(e.calls),
                "scopes": list(e.scopes),
                "external": list(e.external),
                "produces": list(e.produces),
                "consumes": list(e.consumes),
                "env": dict(e.env),
            }
            for e in deployed(m)
        ],
        "topics": list(m.topics),
    }
    return json.dumps(document, indent=2) + "\n"


def services_block(m: Manifest) -> str:
    return "".join(f"  {e.name}:\n    enabled: true\n" for e in deployed(m))


def external_block(m: Manifest) -> str:
    return "".join(
        f"    {system}:\n      cidrs: []\n      ports: [443]\n" for system in external_systems(m)
    )


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }
    if required:
        schema["required"] = required
    return schema


_STRING = {"type": "string"}
_BOOL = {"type": "boolean"}
_SELECTOR = {"type": "object"}
_QUANTITY = {"type": ["string", "integer", "number"]}
_PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
_RESOURCES = _object(
    {
        key: _object({"cpu": _QUANTITY, "memory": _QUANTITY, "ephemeral-storage": _QUANTITY})
        for key in ("requests", "limits")
    }
)


def _service_properties() -> dict[str, Any]:
    return {
        "enabled": _BOOL,
        "replicas": {"type": "integer", "minimum": 0},
        "logLevel": {"enum": ["DEBUG", "INFO", "WARNING", "ERROR"]},
        "env": {
            "type": "object",
            "propertyNames": {"pattern": "^[A-Z][A-Z0-9_]*$"},
            "additionalProperties": {"type": ["string", "number", "boolean"]},
        },
        "secretMounts": {
            "type": "array",
            "items": _object(
                {
                    "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                    "secretName": _STRING,
                    "mountPath": {"type": "string", "pattern": "^/"},
                },
                ["name", "secretName", "mountPath"],
            ),
        },
        "drainSeconds": {"type": "number", "minimum": 0, "maximum": 120},
        "shutdownTimeoutSeconds": {"type": "number", "minimum": 1, "maximum": 600},
        "terminationGracePeriodSeconds": {"type": "integer", "minimum": 1},
        "tmpSizeLimit": _STRING,
        "podAnnotations": {"type": "object", "additionalProperties": _STRING},
        "nodeSelector": {"type": "object", "additionalProperties": _STRING},
        "tolerations": {"type": "array"},
        "probes": _object(
            {
                "startupFailureThreshold": {"type": "integer", "minimum": 1},
                "readinessPeriodSeconds": {"type": "integer", "minimum": 1},
            }
        ),
        "resources": _RESOURCES,
        "autoscaling": _object(
            {
                "enabled": _BOOL,
                "minReplicas": {"type": "integer", "minimum": 1},
                "maxReplicas": {"type": "integer", "minimum": 1},
                "targetCPUUtilizationPercentage": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 100,
                },
            }
        ),
    }


def _network_target() -> dict[str, Any]:
    return {"type": "array", "items": {"type": "object"}}


def _certificates(m: Manifest) -> dict[str, Any]:
    """`certificates.<service>`: a Secret mounted read-only, settings naming its files."""
    files = {"type": "string", "minLength": 1, "pattern": "^[^/]"}
    entry = _object(
        {
            "existingSecret": _STRING,
            "mountPath": {"type": "string", "pattern": "^/"},
            "files": {
                "type": "object",
                "propertyNames": {"pattern": "^[A-Z][A-Z0-9_]*$"},
                "additionalProperties": {
                    "oneOf": [files, {"type": "array", "minItems": 1, "items": files}]
                },
            },
        },
        ["existingSecret", "files"],
    )
    return _object({e.name: entry for e in deployed(m) if e.kind == "service"})


def schema(m: Manifest) -> dict[str, Any]:
    service = _service_properties()
    return {
        "$schema": "https://json-schema.org/draft-07/schema#",
        "title": "Values of the Bureautique Santé chart (generated by `make contracts`)",
        **_object(
            {
                "global": {"type": "object"},  # set by parent charts
                "image": _object(
                    {
                        "registry": _STRING,
                        "repository": {"type": "string", "minLength": 1},
                        "tag": _STRING,
                        "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
                    }
                ),
                "imagePullSecrets": {"type": "array"},
                "fullnameOverride": _STRING,
                "mongodb": _object(
                    {
                        "existingSecret": {"type": "string", "minLength": 1},
                        "uriKey": {"type": "string", "minLength": 1},
                        "databasePrefix": _STRING,
                    }
                ),
                "kafka": _object(
                    {
                        "bootstrapServers": {"type": "string", "minLength": 1},
                        "cluster": _STRING,
                        "tls": _object(
                            {"enabled": _BOOL, "caSecret": _STRING, "userSecret": _STRING}
                        ),
                        "sasl": _object({"username": _STRING, "passwordSecret": _STRING}),
                        "topics": _object(
                            {
                                "create": _BOOL,
                                "apiVersion": {
                                    "enum": ["kafka.strimzi.io/v1", "kafka.strimzi.io/v1beta2"]
                                },
                                "partitions": {"type": "integer", "minimum": 1},
                                "replicas": {"type": "integer", "minimum": 1},
                                "minInsyncReplicas": {"type": "integer", "minimum": 1},
                                "retentionMs": {"type": "integer", "minimum": 1},
                                "dlqRetentionMs": {"type": "integer", "minimum": 1},
                            }
                        ),
                    }
                ),
                "tokenSigning": _object({"existingSecret": {"type": "string", "minLength": 1}}),
                "serviceClients": _object({"existingSecret": {"type": "string", "minLength": 1}}),
                "certificates": _certificates(m),
                "slaMonitor": _object(
                    {
                        "synthetic": _object(
                            {
                                "existingSecret": _STRING,
                                "usernameKey": {"type": "string", "minLength": 1},
                                "passwordKey": {"type": "string", "minLength": 1},
                            }
                        )
                    }
                ),
                "gateway": _object(
                    {
                        "trustedProxies": {"type": "array", "items": _STRING},
                        "corsOrigins": {"type": "array", "items": _STRING},
                    }
                ),
                "podNetworkCidr": _STRING,
                "ingress": _object(
                    {
                        "enabled": _BOOL,
                        "className": _STRING,
                        "host": _STRING,
                        "tlsSecret": _STRING,
                        "annotations": {"type": "object", "additionalProperties": _STRING},
                    }
                ),
                "networkPolicy": _object(
                    {
                        "enabled": _BOOL,
                        "ingressController": _object(
                            {"namespaceSelector": _SELECTOR, "podSelector": _SELECTOR}
                        ),
                        "prometheus": _object(
                            {
                                "enabled": _BOOL,
                                "namespaceSelector": _SELECTOR,
                                "podSelector": _SELECTOR,
                            }
                        ),
                        "kafka": _object(
                            {"to": _network_target(), "ports": {"type": "array", "items": _PORT}}
                        ),
                        "mongodb": _object({"to": _network_target(), "port": _PORT}),
                        "external": _object(
                            {
                                system: _object(
                                    {
                                        "cidrs": {"type": "array", "items": _STRING},
                                        "ports": {"type": "array", "items": _PORT},
                                    }
                                )
                                for system in external_systems(m)
                            }
                        ),
                    }
                ),
                "tracing": _object({"otlpEndpoint": _STRING}),
                "monitoring": _object(
                    {
                        "serviceMonitor": _object(
                            {"enabled": _BOOL, "interval": _STRING, "labels": {"type": "object"}}
                        ),
                        "prometheusRule": _object({"enabled": _BOOL, "labels": {"type": "object"}}),
                        "grafanaDashboards": _object({"enabled": _BOOL}),
                    }
                ),
                "demo": _object({"seed": _BOOL}),
                "defaults": _object(service),
                "services": _object({e.name: _object(service) for e in deployed(m)}),
                "simulators": {
                    "type": "object",
                    "additionalProperties": _object(
                        {
                            "enabled": _BOOL,
                            "image": {"enum": [e.name for e in deployed(m)]},
                            "module": {"type": "string", "pattern": "^bsante\\.[a-z_.]+$"},
                            "args": {"type": "array", "items": _STRING},
                            "ports": {
                                "type": "array",
                                "minItems": 1,
                                "items": _object(
                                    {"name": _STRING, "port": _PORT}, ["name", "port"]
                                ),
                            },
                            "env": {"type": "object"},
                        },
                        ["enabled", "image", "module", "ports"],
                    ),
                },
            }
        ),
    }


def schema_json(m: Manifest) -> str:
    return json.dumps(schema(m), indent=2, ensure_ascii=False) + "\n"
