"""Backward-compatibility rules between two JSON Schemas of the same event version.

A consumer written against the old schema must still read every new event: no property may be
removed or renamed, none may change type, and no new property may be required.
"""

from __future__ import annotations

from typing import Any

_TYPE_KEYS = ("type", "format", "enum", "const", "$ref", "anyOf", "oneOf", "allOf", "items")


def _shape(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: schema[k] for k in _TYPE_KEYS if k in schema}


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    old_props: dict[str, Any] = old.get("properties", {})
    new_props: dict[str, Any] = new.get("properties", {})
    for name, schema in old_props.items():
        if name not in new_props:
            problems.append(f"property {name!r} removed or renamed")
        elif _shape(schema) != _shape(new_props[name]):
            problems.append(f"property {name!r} changed type")
    newly_required = set(new.get("required", [])) - set(old.get("required", []))
    for name in sorted(newly_required):
        problems.append(f"property {name!r} is newly required")
    if old.get("$defs", {}) != new.get("$defs", {}):
        for name, schema in old.get("$defs", {}).items():
            if name in new.get("$defs", {}):
                problems.extend(
                    f"{name}: {p}" for p in breaking_changes(schema, new["$defs"][name])
                )
            else:
                problems.append(f"definition {name!r} removed")
    return problems
