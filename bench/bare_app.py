"""The baselines of the load benchmarks: bare FastAPI + aiosqlite, with the same SQLite journal
and `synchronous` settings as the platform, one endpoint per measured platform route.

- GET /patients/{id}: read one row, insert one audit row (autocommit).
- POST /patients: a pydantic body, one patient row and one outbox-like row in one transaction.
- POST /patients/{id}/submissions: a pydantic body (form id, typed answers) and one row.
- POST /documents/{id}/sign: the PDF given by --pdf sealed (PAdES) by the documents service's
  signing module with a demo cachet (RSA 2048, the key size of the platform's demo cachet) in a
  worker thread, then one row holding the sealed bytes.

Run: python bench/bare_app.py --db DIR/bare.db --port N [--pdf FILE --pki DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import aiosqlite
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

SCHEMA = """
CREATE TABLE IF NOT EXISTS patients (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (id TEXT PRIMARY KEY, patient_id TEXT, at TEXT);
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE,
    topic TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS submissions (id TEXT PRIMARY KEY, patient_id TEXT, data TEXT);
CREATE TABLE IF NOT EXISTS signed (id TEXT PRIMARY KEY, sha256 TEXT, pdf BLOB, at TEXT);
"""


class NewPatient(BaseModel):
    model_config = ConfigDict(extra="forbid")

    birth_name: str = Field(min_length=1, max_length=100)
    birth_given_names: str = Field(min_length=1, max_length=100)
    sex: Literal["M", "F", "I"]
    birth_date: date
    birth_place: str | None = Field(default=None, max_length=20)


class Vitals(BaseModel):
    pulse: int = Field(ge=20, le=250)
    systolic_bp: int = Field(ge=50, le=300)
    diastolic_bp: int = Field(ge=20, le=200)
    measured_at: datetime


class NewSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    form_id: Literal["surveillance"]
    answers: Vitals
    complete: bool = False


def build(db: str, synchronous: str, pdf: Path | None = None, pki: Path | None = None) -> FastAPI:
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        conn = await aiosqlite.connect(db, isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute(f"PRAGMA synchronous={synchronous}")
        await conn.executescript(SCHEMA)
        await conn.execute(
            "INSERT OR IGNORE INTO patients VALUES ('p1', ?)",
            (json.dumps({"birth_name": "DUPONT", "birth_given_names": "Marie"}),),
        )
        state["conn"] = conn
        # One writer at a time on the shared connection, as the platform's SQLite store does.
        state["lock"] = asyncio.Lock()
        if pdf is not None and pki is not None:
            from bsante.documents import signing

            state["pdf"] = pdf.read_bytes()
            state["sealer"] = signing.ensure_demo_pki(pki).sealer()
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

    @app.post("/patients", status_code=201)
    async def create(body: NewPatient) -> dict[str, object]:
        patient_id = str(uuid.uuid4())
        data = body.model_dump(mode="json")
        event = json.dumps({"event_type": "PatientCreated", "patient_id": patient_id, **data})
        async with state["lock"]:
            conn = state["conn"]
            await conn.execute("BEGIN IMMEDIATE")
            try:
                await conn.execute(
                    "INSERT INTO patients VALUES (?, ?)", (patient_id, json.dumps(data))
                )
                await conn.execute(
                    "INSERT INTO outbox (event_id, topic, key, value, created_at) "
                    "VALUES (?, 'patient', ?, ?, ?)",
                    (str(uuid.uuid4()), patient_id, event, datetime.now(UTC).isoformat()),
                )
                await conn.execute("COMMIT")
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
        return {"id": patient_id, **data}

    @app.post("/patients/{patient_id}/submissions", status_code=201)
    async def submit(patient_id: str, body: NewSubmission) -> dict[str, object]:
        submission_id = str(uuid.uuid4())
        data = body.model_dump(mode="json")
        await state["conn"].execute(
            "INSERT INTO submissions VALUES (?, ?, ?)",
            (submission_id, patient_id, json.dumps(data)),
        )
        return {"id": submission_id, "patient_id": patient_id, **data}

    @app.post("/documents/{document_id}/sign")
    async def sign(document_id: str) -> dict[str, object]:
        if "sealer" not in state:
            raise HTTPException(404, "started without --pdf and --pki")
        sealed = await asyncio.to_thread(state["sealer"].seal_pdf, state["pdf"])
        digest = hashlib.sha256(sealed).hexdigest()
        await state["conn"].execute(
            "INSERT INTO signed VALUES (?, ?, ?, ?)",
            (f"{document_id}:{uuid.uuid4()}", digest, sealed, datetime.now(UTC).isoformat()),
        )
        return {"id": document_id, "status": "signed", "pdf_sha256": digest}

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--synchronous", default="FULL")
    parser.add_argument("--pdf", type=Path, help="The PDF the signing baseline seals")
    parser.add_argument("--pki", type=Path, help="Where its demo cachet is made")
    args = parser.parse_args()
    uvicorn.run(
        build(args.db, args.synchronous, args.pdf, args.pki),
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        log_level="warning",
    )
