"""The embedded platform's start-up hook: called once, after every service has started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager

from bsante.chassis.service import Service
from bsante.platform.embedded import build_platform


async def test_on_started_runs_once_after_every_service_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    start = Service.start

    async def recorded(self: Service[Any]) -> None:
        await start(self)
        events.append(f"started {self.name}")

    monkeypatch.setattr(Service, "start", recorded)
    app = build_platform(tmp_path / "var", on_started=lambda: events.append("on_started"))
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60):
        assert events[-1] == "on_started" and events.count("on_started") == 1
        assert {"started identity", "started patient", "started documents"} <= set(events)
    assert events.count("on_started") == 1
