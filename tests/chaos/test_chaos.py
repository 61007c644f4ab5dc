"""The short crash campaign of `make test`: 10 random SIGKILLs of the platform's processes
under a workload, then every exactly-once check of the full campaign (`make chaos`)."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from chaos.harness import run_campaign  # type: ignore[import-not-found]

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
    campaign = run_campaign(tmp_path, kills=KILLS, seed=seed)
    with capsys.disabled():
        print("\n" + campaign.report())
    assert len(campaign.kills) == KILLS or campaign.failures
    assert not campaign.failures, campaign.report()
