"""The short crash campaign of `make test`: 10 random SIGKILLs of the platform's processes
under a workload, then every exactly-once check of the full campaign (`make chaos`)."""

from __future__ import annotations

import functools
import os
import random
from pathlib import Path

import pytest
from chaos.harness import run_campaign  # type: ignore[import-not-found]
from log_scanner import Scanner, collect_secrets  # type: ignore[import-not-found]

KILLS = int(os.environ.get("CHAOS_KILLS", "10"))

pytestmark = pytest.mark.e2e


# Generous (a loaded machine is slow, never wrong), but bounded: it cannot hang the suite.
@pytest.mark.timeout(300 + 20 * KILLS)
def test_the_platform_keeps_everything_exactly_once_through_random_kills(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(2**32))
    with capsys.disabled():
        print(f"\ncrash campaign: {KILLS} kills, seed {seed} (CHAOS_SEED={seed} replays it)")
    if KILLS > 10:  # `make chaos`: say how it goes
        with capsys.disabled():
            campaign = run_campaign(
                tmp_path, kills=KILLS, seed=seed, progress=functools.partial(print, flush=True)
            )
    else:
        campaign = run_campaign(tmp_path, kills=KILLS, seed=seed)
    with capsys.disabled():
        print("\n" + campaign.report())
    assert len(campaign.kills) == KILLS or campaign.failures
    assert not campaign.failures, campaign.report()

    # The processes' own logs (files, not captured by pytest) go through the suite's scanner.
    scanner = Scanner(collect_secrets())
    findings = [
        finding
        for log in sorted((tmp_path / "logs").glob("*.log"))
        for finding in scanner.scan("chaos", log.stem, log.read_text(errors="replace"))
    ]
    assert not findings, findings[:5]
