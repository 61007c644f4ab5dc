"""Backup of a running platform's data directory, restored into a fresh one: the restored
platform serves the same data and resumes its consumers without duplicates."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from kit import MEDECIN, TILLEULS, Platform, eventually  # type: ignore[import-not-found]

from bsante.gateway.app import build_embedded
from bsante.gateway.settings import GatewaySettings
from bsante.platform import backup
from bsante.platform.embedded import build_services


@asynccontextmanager
async def running(data: Path) -> AsyncIterator[Platform]:
    services = build_services(data)
    app = build_embedded(GatewaySettings(), services)
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://platform") as client:
            yield Platform(client, services, data)


async def reads_of(platform: Platform, patient_id: str) -> int:
    admin = await platform.login(TILLEULS)
    history = await platform.client.get(
        f"/api/identity/audit/patients/{patient_id}", headers=admin, params={"limit": 200}
    )
    items = history.json().get("items", []) if history.status_code == 200 else []
    return len([i for i in items if i["action"] == "read" and i["service"] == "patient"])


async def read_and_wait(platform: Platform, patient_id: str, expected: int) -> None:
    doctor = await platform.login(MEDECIN)
    read = await platform.client.get(f"/api/patient/patients/{patient_id}", headers=doctor)
    assert read.status_code == 200, read.text

    async def arrived() -> bool:
        return await reads_of(platform, patient_id) >= expected

    await eventually(arrived, timeout=60)
    assert await reads_of(platform, patient_id) == expected


async def test_a_restored_backup_serves_the_same_data_and_resumes_without_duplicates(
    tmp_path: Path,
) -> None:
    first, restored, backups = tmp_path / "first", tmp_path / "restored", tmp_path / "backups"
    async with running(first) as platform:
        doctor = await platform.login(MEDECIN)
        kept = (await platform.create_patient(doctor, birth_name="AVANT")).json()["id"]
        await read_and_wait(platform, kept, 1)
        # Online: the platform keeps running (and its tasks writing) during the backup.
        taken = await asyncio.to_thread(backup.backup, first, backups)
        later = (await platform.create_patient(doctor, birth_name="APRES")).json()["id"]
        await read_and_wait(platform, kept, 2)
    assert {"identity.db", "patient.db", "bus.db"} <= set(taken.files)

    backup.restore(taken.path, restored)
    # The relay leases of the first platform's processes are not restored with the data.
    restored_patient = sqlite3.connect(restored / "patient.db")
    try:
        assert restored_patient.execute("SELECT COUNT(*) FROM leases").fetchone() == (0,)
    finally:
        restored_patient.close()
    async with running(restored) as platform:
        doctor = await platform.login(MEDECIN)
        same = await platform.client.get(f"/api/patient/patients/{kept}", headers=doctor)
        assert same.status_code == 200
        assert "AVANT" in same.text
        gone = await platform.client.get(f"/api/patient/patients/{later}", headers=doctor)
        assert gone.status_code == 404
        # That read (audited now) and one more: the consumers resumed where the backup
        # stood, each access counted once (the read taken after the backup is not there).
        await read_and_wait(platform, kept, 3)
        await read_and_wait(platform, kept, 4)


def test_a_damaged_backup_is_refused_and_nothing_is_restored(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    conn = sqlite3.connect(data / "patient.db")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()
    (data / "blobs").mkdir()
    (data / "blobs" / "ab12").write_bytes(b"content")
    taken = backup.backup(data, tmp_path / "backups")
    assert backup.verify(taken.path).files.keys() == {"patient.db", "blobs/ab12"}

    (taken.path / "blobs" / "ab12").write_bytes(b"tampered")
    with pytest.raises(backup.BackupError, match="SHA-256"):
        backup.restore(taken.path, tmp_path / "restored")
    assert not (tmp_path / "restored").exists()

    (taken.path / "blobs" / "ab12").write_bytes(b"content")
    with pytest.raises(backup.BackupError, match="not empty"):
        backup.restore(taken.path, data)
    backup.restore(taken.path, tmp_path / "restored")
    rows = sqlite3.connect(tmp_path / "restored" / "patient.db").execute("SELECT x FROM t")
    assert rows.fetchall() == [(1,)]
    assert backup.main(["verify", str(taken.path)]) == 0
    assert backup.main(["verify", str(tmp_path)]) == 1
