"""The service manifest: well formed, and every file that lists services agrees with it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bsante.contracts import events, manifest, topics
from bsante.contracts.manifest import ManifestError, load, parse
from bsante.contracts.registry import registry

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = '[services.gateway]\nkind = "gateway"\nmodule = "bsante.gateway"\n'
GATEWAY += 'folder = "services/gateway"\nport = 8000\n'


def checkout(tmp_path: Path) -> Path:
    """A copy of the files the generator reads and writes."""
    for name in [*manifest.TARGETS, manifest.SOURCE]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    for entry in load().services:
        (tmp_path / entry.folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / entry.folder / "pyproject.toml", tmp_path / entry.folder)
    return tmp_path


def test_the_committed_files_agree_with_the_manifest() -> None:
    assert manifest.stale(ROOT, load()) == [], "run `make contracts`"
    assert manifest.main(["check", "--root", str(ROOT)]) == 0


def test_check_names_a_file_that_disagrees(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkout(tmp_path)
    source = tmp_path / manifest.SOURCE
    source.write_text(source.read_text().replace("port = 8000", "port = 8001"))
    assert manifest.main(["check", "--root", str(tmp_path)]) == 1
    assert "deploy/compose.yaml" in capsys.readouterr().err
    assert manifest.main(["generate", "--root", str(tmp_path)]) == 0
    assert '"8001:8080"' in (tmp_path / "deploy/compose.yaml").read_text()
    assert manifest.main(["check", "--root", str(tmp_path)]) == 0


def test_every_service_and_its_real_topics_are_listed() -> None:
    m = load()
    assert [e.name for e in m.services] == [
        "identity",
        "patient",
        "sla-monitor",
        "forms",
        "documents",
        "dmp-connector",
        "mss-connector",
        "gateway",
        "card-bridge",
    ]
    assert m.get("patient").consumes == (
        topics.CARD_BRIDGE,
        topics.DMP_CONNECTOR,
        topics.DOCUMENTS,
        topics.FORMS,
        topics.MSS_CONNECTOR,
        topics.PATIENT,
    )
    assert m.get("sla-monitor").env_prefix == "SLA_MONITOR_"
    assert set(topics.ALL) == {
        topics.IDENTITY,
        topics.PATIENT,
        topics.SLA_MONITOR,
        topics.FORMS,
        topics.CARD_BRIDGE,
        topics.DOCUMENTS,
        topics.DMP_CONNECTOR,
        topics.MSS_CONNECTOR,
        topics.AUDIT,
        topics.OPERATIONS,
        topics.DOCUMENTS,  # consumed by sla-monitor (usage indicators)
    }
    assert m.get("sla-monitor").consumes == (
        topics.DMP_CONNECTOR,
        topics.DOCUMENTS,
        topics.MSS_CONNECTOR,
        topics.OPERATIONS,
        topics.PATIENT,
    )
    assert events  # registers the events
    # Topics whose producer is not in the manifest yet (its contract landed first).
    planned: set[str] = set()
    assert {spec.topic for spec in registry} <= set(topics.ALL) | planned, "unknown topic"
    produced = {t for e in m.services for t in e.produces}
    assert {spec.topic for spec in registry} - produced == planned, (
        "only planned services produce a topic nobody in the manifest produces"
    )
    bridge = m.get("card-bridge")
    assert bridge.kind == "workstation-agent" and bridge.produces == (topics.CARD_BRIDGE,)
    assert bridge not in m.of_kind("service", "gateway"), "a workstation agent is not deployed"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            '[services.x]\nkind = "daemon"\nmodule = "bsante.x"\nfolder = "services/x"\nport = 1\n',
            "kind",
        ),
        ('[services.x]\nkind = "service"\nmodule = "bsante.x"\nport = 1\n', "missing folder"),
        (
            '[services.x]\nkind = "service"\nmodule = "x"\nfolder = "services/x"\nport = 1\n',
            "module",
        ),
        (
            '[services.x]\nkind = "service"\nmodule = "bsante.x"\nfolder = "services/x"\nport = 1\n'
            'calls = ["nobody"]\n',
            "calls names unknown nobody",
        ),
        (
            '[services.x]\nkind = "service"\nmodule = "bsante.x"\nfolder = "services/x"\nport = 1\n'
            'produces = ["patients"]\n',
            "'patients' is not well formed",
        ),
        (
            '[services.x]\nkind = "service"\nmodule = "bsante.x"\nfolder = "services/x"\nport = 1\n'
            'topic = ["bsante.x.v1"]\n',
            "unknown keys topic",
        ),
        ("[services.x\n", "services.toml"),
    ],
)
def test_a_malformed_entry_is_a_clear_error(table: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse(table + GATEWAY)


def test_an_entry_naming_a_missing_module_is_a_clear_error() -> None:
    m = parse(
        '[services.ghost]\nkind = "service"\nmodule = "bsante.ghost"\nfolder = "services/ghost"\n'
        "port = 8099\n" + GATEWAY
    )
    with pytest.raises(
        ManifestError, match="'ghost' names module 'bsante.ghost.app'.*not installed"
    ):
        m.get("ghost").import_module("app")


def test_a_workstation_agent_is_a_part_but_not_deployed(tmp_path: Path) -> None:
    """The card bridge: installed and type-checked, no container, not in the platform."""
    checkout(tmp_path)
    assert manifest.main(["generate", "--root", str(tmp_path)]) == 0
    assert "services/card-bridge" in (tmp_path / "Makefile").read_text()
    assert "services/card-bridge/src" in (tmp_path / "pyproject.toml").read_text()
    compose = (tmp_path / "deploy/compose.yaml").read_text()
    assert "card-bridge:" not in compose, "no container for a workstation agent"
    topic_line = next(line for line in compose.splitlines() if "for t in" in line)
    topics_created = [t.rstrip(";") for t in topic_line.split()]
    assert "bsante.card-bridge.v1" in topics_created, "its topic is still created"
    assert "card-bridge" not in (tmp_path / "deploy/docker-bake.hcl").read_text()
    assert "card-bridge" not in (tmp_path / "platform/pyproject.toml").read_text()


def test_a_distribution_named_otherwise_than_its_entry_is_refused(tmp_path: Path) -> None:
    checkout(tmp_path)
    for entry in load().services:
        (tmp_path / entry.folder / "pyproject.toml").write_text('[project]\nname = "bsante-x"\n')
    with pytest.raises(ManifestError, match="must name the distribution bsante-identity"):
        manifest.rendered(tmp_path, load())


def test_scopes_default_to_reading_each_called_service() -> None:
    base = GATEWAY + (
        '[services.forms]\nkind = "service"\nmodule = "bsante.forms"\n'
        'folder = "services/forms"\nport = 8084\ncalls = ["patient"]\n'
        '[services.patient]\nkind = "service"\nmodule = "bsante.patient"\n'
        'folder = "services/patient"\nport = 8082\n'
    )
    assert parse(base).get("forms").scopes == ("patient:read",)
    explicit = base.replace(
        'calls = ["patient"]', 'calls = ["patient"]\nscopes = ["documents:read"]'
    )
    assert parse(explicit).get("forms").scopes == ("documents:read",)
    with pytest.raises(ManifestError, match="scopes"):
        parse(base.replace('calls = ["patient"]', 'calls = ["patient"]\nscopes = ["Not A Scope"]'))


def test_a_new_service_reaches_the_helm_chart(tmp_path: Path) -> None:
    checkout(tmp_path)
    source = tmp_path / manifest.SOURCE
    source.write_text(
        source.read_text() + '\n[services.letters]\nkind = "service"\nmodule = "bsante.letters"\n'
        'folder = "services/letters"\nport = 8099\nexternal = ["mssante"]\n'
    )
    (tmp_path / "services/letters").mkdir(parents=True)
    (tmp_path / "services/letters/pyproject.toml").write_text(
        '[project]\nname = "bsante-letters"\n'
    )
    assert manifest.main(["generate", "--root", str(tmp_path)]) == 0
    chart = tmp_path / "deploy/helm/bsante"
    assert "  letters:\n    enabled: true\n" in (chart / "values.yaml").read_text()
    assert "    mssante:\n      cidrs: []\n" in (chart / "values.yaml").read_text()
    assert '"letters"' in (chart / "values.schema.json").read_text()
    assert '"name": "letters"' in (chart / "files/manifest.json").read_text()


def test_every_scope_a_service_asks_exists() -> None:
    from bsante.contracts.permissions import ServiceScope

    for entry in load().services:
        assert set(entry.scopes) <= {s.value for s in ServiceScope}, entry.name
