"""A private Dovecot IMAP server (Debian's dovecot-imapd) run from a temporary configuration on a
loopback port: the MSSanté operator simulator's and the tests' IMAP side.

Mail is stored as Maildir under `<root>/mail/<login>`; `deliver` drops a message there the
way an MTA's local delivery would (tmp then rename, so Dovecot never sees half a file).
"""

from __future__ import annotations

import contextlib
import mailbox
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

MAIL_UID = "nobody"
MAIL_GROUP = "nogroup"


def available() -> bool:
    return shutil.which("dovecot") is not None or Path("/usr/sbin/dovecot").exists()


def binary() -> str:
    return shutil.which("dovecot") or "/usr/sbin/dovecot"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _login_user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


class Dovecot:
    """`start()` writes the configuration and runs `dovecot -F -c <file>` until `stop()`.

    Its files live in a directory of their own under the system's temporary directory, open
    for traversal: Dovecot's auth and mail processes run as other users than the caller, and
    cannot enter a private test or data directory. `stop()` removes it.
    """

    def __init__(self, users: Mapping[str, str], *, cert_file: Path, key_file: Path) -> None:
        self._root: Path | None = None
        self.users = dict(users)
        self.cert_file = cert_file
        self.key_file = key_file
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def root(self) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="bsante-dovecot-"))
            self._root.chmod(0o711)
        return self._root

    @property
    def mail_root(self) -> Path:
        return self.root / "mail"

    def _config(self) -> str:
        passwd = self.root / "passwd"
        # {PLAIN}: the passwords are the simulator's and the tests' own throwaway ones.
        passwd.write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in self.users.items()))
        passwd.chmod(0o644)
        root_run = os.getuid() == 0
        mail_user = MAIL_UID if root_run else _login_user()
        mail_group = MAIL_GROUP if root_run else _login_user()
        unprivileged = (
            ""
            if root_run
            else (
                f"default_internal_user = {mail_user}\n"
                f"default_login_user = {mail_user}\n"
                f"default_internal_group = {mail_group}\n"
            )
        )
        uid = pwd.getpwnam(mail_user).pw_uid
        return (
            f"base_dir = {self.root / 'run'}\n"
            f"state_dir = {self.root / 'state'}\n"
            f"log_path = {self.root / 'dovecot.log'}\n"
            f"info_log_path = {self.root / 'dovecot.log'}\n"
            "protocols = imap\n"
            "listen = 127.0.0.1\n"
            "disable_plaintext_auth = yes\n"
            "auth_mechanisms = plain login\n"
            f"first_valid_uid = {min(uid, 500)}\n"
            f"{unprivileged}"
            f"mail_location = maildir:{self.mail_root}/%u\n"
            "ssl = required\n"
            f"ssl_cert = <{self.cert_file}\n"
            f"ssl_key = <{self.key_file}\n"
            "ssl_min_protocol = TLSv1.2\n"
            "passdb {\n  driver = passwd-file\n"
            f"  args = scheme=PLAIN {passwd}\n}}\n"
            "userdb {\n  driver = static\n"
            f"  args = uid={mail_user} gid={mail_group} home={self.mail_root}/%u\n}}\n"
            "service imap-login {\n"
            f"  inet_listener imap {{\n    address = 127.0.0.1\n    port = 0\n  }}\n"
            f"  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {self.port}\n"
            "    ssl = yes\n  }\n}\n"
            "service anvil {\n  chroot =\n}\nservice imap-login {\n  chroot =\n}\n"
        )

    def start(self, timeout: float = 20.0, port: int = 0) -> None:
        for folder in ("run", "state", "mail"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
            (self.root / folder).chmod(0o711)
        for user in self.users:
            self.maildir(user)
        self.port = port or free_port()
        config = self.root / "dovecot.conf"
        config.write_text(self._config())
        self._process = subprocess.Popen(
            [binary(), "-F", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own process group: stop() ends the master and the children it forked.
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                log = self.root / "dovecot.log"
                detail = log.read_text()[-500:] if log.exists() else ""
                raise RuntimeError(f"dovecot exited: {detail}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)  # polling a port until it answers, not synchronising a test
        self.stop()
        raise RuntimeError("dovecot did not listen in time")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            # SIGKILL to the group at once: on SIGTERM, dovecot's master waits a few seconds
            # for its clients' sessions, and nothing here needs a graceful end (the mail is in
            # the Maildirs, whose every change is a rename).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        root, self._root = self._root, None
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)

    def maildir(self, user: str) -> mailbox.Maildir:
        path = self.mail_root / user
        path.parent.mkdir(parents=True, exist_ok=True)
        box = mailbox.Maildir(path, create=True)
        self._own(path)
        return box

    def deliver(self, user: str, raw: bytes) -> None:
        box = self.maildir(user)
        key = box.add(raw)
        self._own(self.mail_root / user)
        del key

    def messages(self, user: str) -> list[bytes]:
        box = mailbox.Maildir(self.mail_root / user, create=False)
        return [box.get_bytes(key) for key in sorted(box.keys())]

    def _own(self, path: Path) -> None:
        # As root, the files must belong to the mail user Dovecot runs the user's session as.
        if os.getuid() != 0:
            return
        entry = pwd.getpwnam(MAIL_UID)
        for folder, dirs, files in os.walk(path):
            os.chown(folder, entry.pw_uid, entry.pw_gid)
            for name in [*dirs, *files]:
                with contextlib.suppress(FileNotFoundError):
                    os.chown(os.path.join(folder, name), entry.pw_uid, entry.pw_gid)
