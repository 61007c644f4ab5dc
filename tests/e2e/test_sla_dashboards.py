"""The ops dashboard and the structures' status page in Debian's headless Chromium, served by
the embedded platform over real HTTP (uvicorn), through the gateway.

The pages must show the figures the API returns; each test saves a screenshot in its tmp dir.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
from kit import TILLEULS, Platform, eventually  # type: ignore[import-not-found]

from bsante.gateway.app import build_embedded
from bsante.gateway.settings import GatewaySettings
from bsante.platform.embedded import build_services
from bsante.sla_monitor.monitor import Monitor

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
selenium = pytest.importorskip("selenium", reason="selenium is a dev dependency (make dev)")
if CHROMIUM is None or DRIVER is None:
    pytest.skip(
        "chromium and chromium-driver missing: `make dev` installs them as root",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service as ChromeService  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def pct(x: float | None) -> str:
    """As the pages print a ratio."""
    return "—" if x is None else f"{100 * x:.2f} %"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Platform, str]]:
    monkeypatch.setenv("SLA_MONITOR_PROBES_ENABLED", "false")
    monkeypatch.setenv("SLA_MONITOR_SYNTHETIC_USERNAME", TILLEULS[0])
    monkeypatch.setenv("SLA_MONITOR_SYNTHETIC_PASSWORD", TILLEULS[1])
    services = build_services(tmp_path / "data")
    app = build_embedded(GatewaySettings(), services)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base) as client:

        async def started() -> bool:
            return bool(server.started)

        await eventually(started, timeout=60)
        yield Platform(client, services, tmp_path), base
    server.should_exit = True
    await task


def month_start(at: datetime) -> datetime:
    """The first instant of the current month in Paris: the ticket counts in this month."""
    local = at.astimezone(ZoneInfo("Europe/Paris"))
    return local.replace(day=1, hour=0, minute=1, second=0, microsecond=0)


def browser(tmp_path: Path) -> Any:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1600")
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium'}")
    return webdriver.Chrome(service=ChromeService(str(DRIVER)), options=options)


def page_texts(url: str, tmp_path: Path, shot: str, selectors: list[str]) -> dict[str, list[str]]:
    """Open `url`, wait until the page says it loaded, read the texts, save a screenshot."""
    driver = browser(tmp_path)
    try:
        driver.get(url)
        WebDriverWait(driver, 30, poll_frequency=0.1).until(
            lambda d: (
                d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded") == "true"
                or d.find_element(By.ID, "error").text
            )
        )
        assert driver.find_element(By.ID, "error").text == ""
        texts = {s: [e.text for e in driver.find_elements(By.CSS_SELECTOR, s)] for s in selectors}
        driver.save_screenshot(str(tmp_path / shot))
        return texts
    finally:
        driver.quit()


async def test_the_ops_dashboard_shows_what_the_api_returns(
    served: tuple[Platform, str], tmp_path: Path
) -> None:
    p, base = served
    monitor: Monitor = p.services["sla-monitor"].app.state.monitor
    now = datetime.now(UTC)
    for n in range(3):
        await monitor.cycle(at=now - timedelta(minutes=10 - n))
    admin = p.as_role("structure_admin", "demo-ehpad")
    r = await p.client.post(
        "/api/sla-monitor/tickets",
        json={
            "category": "incident",
            "priority": "bloquant",
            "summary": "Lecteur de carte HS",
            "opened_at": month_start(now).isoformat(),
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    ops = p.as_role("ops", "bsante-ops")
    overview = (await p.client.get("/api/sla-monitor/ops/overview", headers=ops)).json()
    token = ops["Authorization"].removeprefix("Bearer ")
    texts = await asyncio.to_thread(
        page_texts,
        f"{base}/api/sla-monitor/pages/ops#token={token}",
        tmp_path,
        "ops.png",
        [
            "#availability tbody tr[data-target='platform'] .ratio-24x7",
            "#compliance tbody tr[data-indicator='take_in'] .share",
            "#compliance tbody tr[data-indicator='take_in'] .breaches",
            "#tickets tbody tr",
            "#burn tbody tr",
            "#availability-chart rect",
        ],
    )
    platform = next(r for r in overview["availability"] if r["target"] == "platform")
    assert platform["ratio_24x7"] == 1.0
    assert texts["#availability tbody tr[data-target='platform'] .ratio-24x7"] == ["100.00 %"]
    take_in = next(c for c in overview["compliance"]["indicators"] if c["indicator"] == "take_in")
    assert texts["#compliance tbody tr[data-indicator='take_in'] .share"] == [pct(take_in["share"])]
    assert texts["#compliance tbody tr[data-indicator='take_in'] .breaches"] == [
        str(len(take_in["breaches"]))
    ]
    assert len(texts["#tickets tbody tr"]) == len(overview["tickets_at_risk"]) == 1
    assert len(texts["#burn tbody tr"]) == len(overview["burn_rates"]["windows"]) == 5
    assert len(texts["#availability-chart rect"]) == len(overview["availability"])
    assert (tmp_path / "ops.png").stat().st_size > 1000


async def test_the_status_page_shows_the_platform_state_and_own_tickets(
    served: tuple[Platform, str], tmp_path: Path
) -> None:
    p, base = served
    monitor: Monitor = p.services["sla-monitor"].app.state.monitor
    await monitor.cycle(at=datetime.now(UTC) - timedelta(minutes=2))
    await monitor.cycle(at=datetime.now(UTC) - timedelta(minutes=1))
    admin = p.as_role("structure_admin", "demo-ehpad")
    for structure, summary in (("demo-ehpad", "Impression KO"), ("demo-ssiad", "Autre structure")):
        r = await p.client.post(
            "/api/sla-monitor/tickets",
            json={"category": "request", "priority": "mineur", "summary": summary},
            headers=p.as_role("structure_admin", structure),
        )
        assert r.status_code == 201
    status = (await p.client.get("/api/sla-monitor/status/summary", headers=admin)).json()
    assert status["platform"] == "operational"
    token = admin["Authorization"].removeprefix("Bearer ")
    texts = await asyncio.to_thread(
        page_texts,
        f"{base}/api/sla-monitor/pages/status#token={token}",
        tmp_path,
        "status.png",
        ["#platform", "#tickets tbody tr td:first-child", "#availability"],
    )
    assert texts["#platform"] == ["Service opérationnel"]
    assert texts["#tickets tbody tr td:first-child"] == ["Impression KO"]  # not the other's
    assert status["availability_this_month"] == 1.0
    assert texts["#availability"] == ["100.00 %"]
    assert (tmp_path / "status.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("page", "rendered"),
    [("/docs", ".swagger-ui .info .title"), ("/redoc", "[role=navigation], .menu-content")],
)
async def test_the_docs_pages_render_under_the_security_headers(
    served: tuple[Platform, str], tmp_path: Path, page: str, rendered: str
) -> None:
    """The pages' CSP refuses framing but lets their own scripts run: the page draws the API."""
    p, base = served
    answer = await p.client.get(page)
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]

    def rendered_without_csp_errors() -> list[str]:
        driver = browser(tmp_path)
        try:
            driver.get(base + page)
            WebDriverWait(driver, 30, poll_frequency=0.1).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, rendered)
            )
            console = [entry["message"] for entry in driver.get_log("browser")]
            return [m for m in console if "Content Security Policy" in m]
        finally:
            driver.quit()

    # In a thread: the server answering the browser runs on this event loop.
    assert await asyncio.to_thread(rendered_without_csp_errors) == []
