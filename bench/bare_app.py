"""The baseline of the read benchmark: bare FastAPI + aiosqlite, one row read, one audit row
inserted per request, with the same SQLite journal and `synchronous` settings as the platform.

Run: python bench/bare_app.py --db DIR/bare.db --port N --synchronous FULL
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import aiosqlite
import uvicorn
from fastapi import FastAPI, HTTPException


def build(db: str, synchronous: str) -> FastAPI:
    state: dict[str, aiosqlite.Connection] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        conn = await aiosqlite.connect(db, isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute(f"PRAGMA synchronous={synchronous}")
        await conn.executescript(
            "CREATE TABLE IF NOT EXISTS patients (id TEXT PRIMARY KEY, data TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS audit (id TEXT PRIMARY KEY, patient_id TEXT, at TEXT);"
        )
        await conn.execute(
            "INSERT OR IGNORE INTO patients VALUES ('p1', ?)",
            (json.dumps({"birth_name": "DUPONT", "birth_given_names": "Marie"}),),
        )
        state["conn"] = conn
        yield
        await conn.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @app.get("/patients/{patient_id}")
    async def read(patient_id: str) -> dict[str, object]:
        conn = state["conn"]
        async with conn.execute("SELECT data FROM patients WHERE id = ?", (patient_id,)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise HTTPException(404)
        await conn.execute(
            "INSERT INTO audit VALUES (?, ?, ?)",
            (str(uuid.uuid4()), patient_id, datetime.now(UTC).isoformat()),
        )
        return {"id": patient_id, **json.loads(row[0])}

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--synchronous", default="FULL")
    args = parser.parse_args()
    uvicorn.run(
        build(args.db, args.synchronous),
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        log_level="warning",
    )
