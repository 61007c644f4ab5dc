"""pip-audit over the pinned constraints: fails on a known vulnerability not listed with a reason.

When the vulnerability service cannot be reached, or answers without knowing the pinned
versions (a mirror without the metadata), nothing is audited: that is said on stderr and the
run does not fail, since no verdict was obtained. `--strict` makes that a failure too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Vulnerability id -> why it does not apply to this platform (or until when it is accepted).
ALLOWED: dict[str, str] = {}
UNREACHABLE = (
    "ConnectionError",
    "NameResolutionError",
    "Max retries exceeded",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "timed out",
)


def run_audit(constraints: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--requirement",
        str(constraints),
        "--no-deps",  # every version is pinned: nothing to resolve
        "--disable-pip",
        "--progress-spinner",
        "off",
        "--format",
        "json",
    ]
    for vulnerability in ALLOWED:
        command += ["--ignore-vuln", vulnerability]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)


def skipped(reason: str) -> int:
    print(f"pip-audit SKIPPED: {reason}", file=sys.stderr)
    return 0


def verdict(completed: subprocess.CompletedProcess[str], strict: bool) -> int:
    try:
        report = json.loads(completed.stdout)
    except ValueError:
        if any(marker in completed.stderr for marker in UNREACHABLE):
            last = completed.stderr.strip().splitlines()[-1:] or [""]
            code = skipped(f"the vulnerability service is unreachable ({last[0][:200]})")
            return 1 if strict else code
        print(completed.stderr, file=sys.stderr)
        return completed.returncode or 1
    dependencies = report.get("dependencies", [])
    unknown = [d["name"] for d in dependencies if d.get("skip_reason")]
    audited = [d for d in dependencies if not d.get("skip_reason")]
    found = [
        (d["name"], d["version"], v["id"])
        for d in audited
        for v in d.get("vulns", [])
        if v["id"] not in ALLOWED
    ]
    for name, version, vulnerability in found:
        print(f"{name} {version}: {vulnerability}", file=sys.stderr)
    if found:
        print(
            f"{len(found)} known vulnerabilit(y/ies): upgrade the pin in constraints.txt, or list "
            "the id in ALLOWED (tools/audit_dependencies.py) with the reason",
            file=sys.stderr,
        )
        return 1
    if not audited:
        code = skipped(
            f"the vulnerability service answered but knows none of the {len(unknown)} pinned "
            "versions (not found): nothing was audited"
        )
        return 1 if strict else code
    if unknown:
        print(
            f"pip-audit: {len(unknown)} pinned distributions unknown to the service, not "
            f"audited: {', '.join(unknown)}",
            file=sys.stderr,
        )
    print(f"pip-audit: {len(audited)} pinned distributions audited, no known vulnerability")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--constraints", type=Path, default=ROOT / "constraints.txt")
    parser.add_argument("--strict", action="store_true", help="fail when nothing was audited")
    args = parser.parse_args()
    return verdict(run_audit(args.constraints), args.strict)


if __name__ == "__main__":
    raise SystemExit(main())
