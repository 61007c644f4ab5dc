"""Backup and restore of the embedded platform's data directory, online and consistent.

    python -m bsante.platform.backup backup  --data var --to backups   (make backup)
    python -m bsante.platform.backup restore backups/<name> --data var  (make restore)
    python -m bsante.platform.backup verify  backups/<name>

Every SQLite file of the directory (each service's store and the event log) is copied with
SQLite's online backup API while this process holds the write lock of all of them at once
(`BEGIN IMMEDIATE`, in a fixed order): no write lands in any file during the copy, so the
backup is one moment of the whole platform (an outbox row and the log entry it became, a
consumer's inbox claim and its offset). Writers of the running platform wait meanwhile (their
busy timeout is 10 s; copying takes milliseconds per megabyte). The other files (blobs,
which are content-addressed and immutable, certificates) are copied afterwards: a blob is
written before the row that references it, so every referenced blob is there.

A backup is a directory with `MANIFEST.json` (size and SHA-256 of every file), written under a
temporary name and renamed when complete. Restoring verifies the hashes and SQLite's
`integrity_check`, and fills an empty directory only; the relay leases of the backed-up
processes are dropped from the restored stores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

FORMAT = 1
MANIFEST = "MANIFEST.json"
SQLITE_HEADER = b"SQLite format 3\x00"
# SQLite's companions of a database file: never copied (the backup API writes whole files).
_COMPANIONS = ("-wal", "-shm", "-journal")
LOCK_TIMEOUT_SECONDS = 30.0


class BackupError(RuntimeError):
    """A backup cannot be taken, verified or restored; the message says why."""


@dataclass(frozen=True)
class Backup:
    path: Path
    files: dict[str, dict[str, object]]
    created_at: str


def _is_sqlite(path: Path) -> bool:
    if not path.is_file() or path.name.endswith(_COMPANIONS):
        return False
    with path.open("rb") as f:
        return f.read(16) == SQLITE_HEADER


def _skipped(path: Path) -> bool:
    """Temporary files (a blob being written) and SQLite companions."""
    return path.name.endswith(_COMPANIONS) or path.name.startswith(".") or ".tmp" in path.name


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not _skipped(path):
            yield path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup(data: Path, to: Path, *, name: str | None = None) -> Backup:
    """A consistent copy of `data` as a new directory under `to`."""
    if not data.is_dir():
        raise BackupError(f"no data directory at {data}")
    created = datetime.now(UTC)
    name = name or created.strftime("%Y%m%dT%H%M%S%fZ")
    target = to / name
    if target.exists():
        raise BackupError(f"{target} already exists")
    partial = to / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    databases = [p for p in _files(data) if _is_sqlite(p)]
    with ExitStack() as stack:
        for path in databases:  # sorted: every backup takes the locks in the same order
            holder = sqlite3.connect(path, timeout=LOCK_TIMEOUT_SECONDS, isolation_level=None)
            stack.callback(holder.close)
            holder.execute("BEGIN IMMEDIATE")
            stack.callback(holder.execute, "ROLLBACK")
        # With every writer held off, a reader's snapshot of each file (WAL: readers do not
        # wait for the lock holders) is the same moment for all of them.
        for path in databases:
            out = partial / path.relative_to(data)
            out.parent.mkdir(parents=True, exist_ok=True)
            source = sqlite3.connect(path, timeout=LOCK_TIMEOUT_SECONDS)
            copy = sqlite3.connect(out)
            try:
                source.backup(copy, pages=-1)
            finally:
                copy.close()
                source.close()
    for path in _files(data):
        if path in databases:
            continue
        out = partial / path.relative_to(data)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, out)
    files = {}
    for path in _files(partial):
        _fsync(path)
        relative = path.relative_to(partial).as_posix()
        files[relative] = {
            "size": path.stat().st_size,
            "sha256": _sha256(path),
            "sqlite": _is_sqlite(path),
        }
    manifest = {"format": FORMAT, "created_at": created.isoformat(), "files": files}
    created_at = created.isoformat()
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    _fsync(partial / MANIFEST)
    partial.rename(target)
    _fsync(to)
    return Backup(target, files, created_at)


def verify(path: Path) -> Backup:
    """The backup's manifest, once every file matches it and every database is intact."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise BackupError(f"{path} is not a backup: {MANIFEST} unreadable ({error})") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: unknown backup format {manifest.get('format')!r}")
    files: dict[str, dict[str, object]] = manifest["files"]
    present = {p.relative_to(path).as_posix() for p in _files(path)} - {MANIFEST}
    if present != set(files):
        extra, missing = sorted(present - set(files)), sorted(set(files) - present)
        raise BackupError(
            f"{path}: files differ from the manifest (extra {extra}, missing {missing})"
        )
    for relative, facts in files.items():
        file = path / relative
        if file.stat().st_size != facts["size"] or _sha256(file) != facts["sha256"]:
            raise BackupError(f"{path}: {relative} does not match its SHA-256")
        if facts.get("sqlite"):
            conn = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
            try:
                result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            finally:
                conn.close()
            if result != "ok":
                raise BackupError(f"{path}: {relative} fails SQLite's integrity check: {result}")
    return Backup(path, files, manifest["created_at"])


def _drop_leases(file: Path) -> None:
    """Drops the relay leases of a restored store: they name the processes that ran at backup
    time, none of which serves the restored directory; its relays take theirs at once instead of
    waiting for those to expire (the jobs' leases stay: a job that was running runs again)."""
    conn = sqlite3.connect(file, isolation_level=None)
    try:
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'leases'"
        ).fetchone()
        if found:
            conn.execute("DELETE FROM leases")
    finally:
        conn.close()


def restore(path: Path, data: Path) -> Backup:
    """Fill the empty (or absent) directory `data` from a verified backup."""
    taken = verify(path)
    if data.exists() and any(data.iterdir()):
        raise BackupError(f"{data} is not empty: restore into a new directory, never over data")
    partial = data.with_name(f".{data.name}.restoring")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for relative, facts in taken.files.items():
        out = partial / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path / relative, out)
        if facts.get("sqlite"):
            _drop_leases(out)
        _fsync(out)
    if data.exists():
        data.rmdir()
    partial.rename(data)
    _fsync(data.parent)
    return taken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    take = commands.add_parser("backup", help="a consistent copy of the data directory")
    take.add_argument("--data", type=Path, default=Path("var"))
    take.add_argument("--to", type=Path, default=Path("backups"))
    back = commands.add_parser("restore", help="fill an empty data directory from a backup")
    back.add_argument("backup", type=Path)
    back.add_argument("--data", type=Path, default=Path("var"))
    check = commands.add_parser("verify", help="check a backup's files and databases")
    check.add_argument("backup", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "backup":
            done = backup(args.data, args.to)
            print(f"backup {done.path} ({len(done.files)} files)")
        elif args.command == "restore":
            done = restore(args.backup, args.data)
            print(f"restored {done.path} (taken {done.created_at}) into {args.data}")
        else:
            done = verify(args.backup)
            print(f"{done.path}: {len(done.files)} files, intact (taken {done.created_at})")
    except BackupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
