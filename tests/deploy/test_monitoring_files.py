"""The SLA objectives shipped to Prometheus and Grafana: rules checked and unit-tested with
Debian's promtool; the dashboard has a stable uid, a datasource variable and known metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bsante.sla_monitor import metrics
from bsante.sla_monitor.contract.availability import SRE_WORKBOOK
from bsante.sla_monitor.contract.indicators import INDICATORS

ROOT = Path(__file__).resolve().parents[2]
CHART_FILES = ROOT / "deploy" / "helm" / "bsante" / "files"
RULES = CHART_FILES / "prometheus" / "sla-monitor.rules.yaml"
RULES_TEST = CHART_FILES / "prometheus" / "sla-monitor.rules.test.yml"
DASHBOARD = CHART_FILES / "dashboards" / "sla-monitor.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: `make dev` installs Debian's prometheus as root"
)


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    result = subprocess.run(
        # Every rule file the chart ships as PrometheusRule groups.
        [str(PROMTOOL), "check", "rules", *map(str, sorted(RULES.parent.glob("*.rules.yaml")))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_of_the_burn_rate_alerts_pass() -> None:
    result = subprocess.run(
        [str(PROMTOOL), "test", "rules", str(RULES_TEST)],
        capture_output=True,
        text=True,
        check=False,
        cwd=RULES_TEST.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_use_the_workbook_table_and_the_objective() -> None:
    text = RULES.read_text()
    for rule in SRE_WORKBOOK:
        factor = f"{rule.factor:g}"
        long_w = f"{int(rule.long.total_seconds() // 3600)}h".replace("72h", "3d")
        short_w = f"{int(rule.short.total_seconds() // 60)}m".replace("360m", "6h")
        assert f"ratio_rate{long_w} > ({factor} * (1 - 0.99))" in text
        assert f"ratio_rate{short_w} > ({factor} * (1 - 0.99))" in text


def test_the_histogram_buckets_sit_on_the_contract_thresholds() -> None:
    assert {i.target.total_seconds() for i in INDICATORS} == set(metrics.CONTRACT_BUCKETS)
    assert metrics.CLOCK_DURATION._upper_bounds[:-1] == list(metrics.CONTRACT_BUCKETS)


def test_the_dashboard_has_a_stable_uid_and_a_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "bsante-sla-monitor" and dashboard["id"] is None
    [variable] = dashboard["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == (
        "datasource",
        "datasource",
        "prometheus",
    )
    names = {"slamonitor_" + m for m in re.findall(r"slamonitor_([a-z_]+)", DASHBOARD.read_text())}
    exported = {
        m._name
        for m in vars(metrics).values()
        if hasattr(m, "_name")  # noqa: SLF001
    }
    recorded = set(re.findall(r"record: (\S+)", RULES.read_text()))
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for t in panel["targets"]:
            assert t["datasource"]["uid"] == "${datasource}"
            used = set(re.findall(r"slamonitor:[a-z_:0-9]+", t["expr"]))
            assert used <= recorded, used - recorded
    suffixes = ("_bucket", "_count", "_sum", "_total")
    base = {n.removesuffix(s) for n in names for s in suffixes if n.endswith(s)} | names
    assert any(b in exported for b in base)
    unknown = {n for n in names if not any(n.removesuffix(s) in exported for s in ("", *suffixes))}
    assert not unknown, unknown
