"""Users, tenant structures, password credentials and login throttling: rules without I/O."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bsante.chassis.errors import AccessDenied, RuleViolation
from bsante.chassis.text import fold
from bsante.contracts.permissions import grantable_roles

# argon2id with the library's RFC 9106 low-memory profile.
_hasher = PasswordHasher()
# Verified against when the account does not exist, so that both cases cost the same time.
_DUMMY_HASH = _hasher.hash("no account has this password")

PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 200

UserKind = Literal["professional", "staff"]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


class WeakPassword(RuleViolation):
    """The password does not follow the password rules."""


class UnknownRoles(RuleViolation):
    """Roles that do not exist or that a structure administrator may not grant."""


class NoStructure(AccessDenied):
    """The account acts for no structure: it cannot open a session."""


class UnknownStructureForUser(AccessDenied):
    """The session was asked to act for a structure the account does not act for."""


def password_problems(password: str, *, username: str = "") -> list[str]:
    """What is wrong with a new password (empty list: acceptable).

    Rules: 12 to 200 characters, at least three of the four character classes (lower case,
    upper case, digit, other), not containing the user name's local part.
    """
    problems = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"at least {PASSWORD_MIN_LENGTH} characters")
    if len(password) > PASSWORD_MAX_LENGTH:
        problems.append(f"at most {PASSWORD_MAX_LENGTH} characters")
    classes = [
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    ]
    if sum(classes) < 3:
        problems.append("three of: lower case, upper case, digit, other character")
    local = username.split("@", 1)[0].lower()
    if len(local) >= 4 and local in password.lower():
        problems.append("must not contain the user name")
    return problems


def check_password_rules(password: str, *, username: str = "") -> None:
    problems = password_problems(password, username=username)
    if problems:
        raise WeakPassword(
            "The password does not follow the password rules",
            errors=[{"field": "password", "message": p, "type": "password_rule"} for p in problems],
        )


def normalise_username(username: str) -> str:
    """The form a user name is stored, claimed and looked up in: the whole e-mail address is
    case-insensitive (RFC 5321 lets the local part be case-sensitive; no provider of our users'
    addresses makes use of it), and compatibility forms (full-width letters) fold to one."""
    return unicodedata.normalize("NFKC", username).strip().casefold()


@dataclass
class User:
    id: str
    username: str
    password_hash: str | None
    display_name: str
    structures: list[str]
    roles: dict[str, list[str]] = field(default_factory=dict)
    profession: str | None = None
    active: bool = True
    kind: UserKind = "staff"
    ps_id_nat: str | None = None
    rpps: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "password_hash": self.password_hash,
            "display_name": self.display_name,
            "structures": self.structures,
            "roles": self.roles,
            "profession": self.profession,
            "active": self.active,
            "kind": self.kind,
            "ps_id_nat": self.ps_id_nat,
            "rpps": self.rpps,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> User:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def acts_for(self, structure_id: str) -> bool:
        return structure_id in self.structures

    def join(self, structure_id: str) -> bool:
        """Add a structure; False if the user already acted for it."""
        if structure_id in self.structures:
            return False
        self.structures.append(structure_id)
        self.roles.setdefault(structure_id, [])
        return True

    def set_roles(self, structure_id: str, roles: list[str]) -> tuple[list[str], list[str]]:
        """Replace the user's roles in one structure; return (granted, revoked)."""
        unknown = sorted(set(roles) - set(grantable_roles()))
        if unknown:
            raise UnknownRoles(
                "Unknown or non-grantable roles: " + ", ".join(unknown),
                errors=[{"field": "roles", "message": f"not grantable: {r}"} for r in unknown],
            )
        before = set(self.roles.get(structure_id, []))
        after = set(roles)
        self.roles[structure_id] = sorted(after)
        return sorted(after - before), sorted(before - after)

    def session_claims(self, acting_structure: str | None) -> tuple[list[str], str]:
        """Structures for the token, the session's acting structure first, and that structure.

        The chassis takes the first structure of the token when a request names none, so the
        structure chosen at login is the session's default; X-Structure-Id still overrides it.
        """
        if not self.structures:
            raise NoStructure("The account acts for no structure")
        acting = acting_structure or self.structures[0]
        if acting not in self.structures:
            raise UnknownStructureForUser("You do not act for this structure")
        return [acting, *(s for s in self.structures if s != acting)], acting


@dataclass
class Structure:
    """A tenant: a structure whose users act on the platform (see also the directory)."""

    id: str
    name: str
    finess: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "finess": self.finess, "tenant": True}


# --- Login throttling ------------------------------------------------------------------------


@dataclass(frozen=True)
class LockoutPolicy:
    """After `threshold` consecutive failures, each further failure locks the account longer."""

    threshold: int = 5
    base_seconds: int = 30
    max_seconds: int = 3600

    def lock_seconds(self, failures: int) -> int:
        """How long to lock after the `failures`-th consecutive failure (0: no lock)."""
        if failures < self.threshold:
            return 0
        return int(min(self.max_seconds, self.base_seconds * 2 ** (failures - self.threshold)))


@dataclass
class LoginThrottle:
    """Failed-login state of one user name, kept whether or not an account has that name."""

    failures: int = 0
    locked_until: datetime | None = None

    def locked(self, now: datetime) -> timedelta | None:
        if self.locked_until is not None and now < self.locked_until:
            return self.locked_until - now
        return None

    def attempt(self, now: datetime, policy: LockoutPolicy) -> int:
        """Count an attempt as a failure before its password is checked; return the lock in
        seconds it sets (0: none). A success then clears the count. Counting first means that
        concurrent guesses cannot all pass the lock check before any failure is recorded: at
        most `threshold` passwords are ever checked while the count is below the threshold."""
        self.failures += 1
        seconds = policy.lock_seconds(self.failures)
        if seconds:
            self.locked_until = now + timedelta(seconds=seconds)
        return seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "failures": self.failures,
            "locked_until": self.locked_until.isoformat() if self.locked_until else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoginThrottle:
        until = data.get("locked_until")
        return cls(int(data.get("failures", 0)), datetime.fromisoformat(until) if until else None)


@dataclass(frozen=True)
class AddressLimit:
    """At most `requests` token requests per client address in a window of `window_seconds`."""

    requests: int = 60
    window_seconds: int = 60


@dataclass
class AddressWindow:
    """Token requests counted for one client address in its current fixed window."""

    started: datetime | None = None
    count: int = 0

    def take(self, now: datetime, limit: AddressLimit) -> timedelta | None:
        """Count one request; when the window is full, how long until it ends (None: allowed)."""
        if self.started is None or now >= self.started + timedelta(seconds=limit.window_seconds):
            self.started, self.count = now, 0
        if self.count >= limit.requests:
            return self.started + timedelta(seconds=limit.window_seconds) - now
        self.count += 1
        return None

    def to_json(self) -> dict[str, Any]:
        return {"started": self.started.isoformat() if self.started else None, "count": self.count}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AddressWindow:
        started = data.get("started")
        return cls(datetime.fromisoformat(started) if started else None, int(data.get("count", 0)))


def address_key(address: str) -> str:
    """Document id of a client address's window: a digest, the store keeps no address."""
    return hashlib.sha256(address.encode()).hexdigest()


def throttle_key(username: str) -> str:
    """Document id of a user name's throttle: a digest, so the store holds no typed names."""
    return hashlib.sha256(normalise_username(username).encode()).hexdigest()


# --- Search keys -----------------------------------------------------------------------------

_NON_ALNUM = re.compile(r"[^0-9A-Z]+")


def search_key(text: str | None) -> str:
    """Upper case, accents and punctuation removed, single spaces: "Lé-a  d'Arc" -> "LE A D ARC".

    The chassis' folding (`bsante.chassis.text.fold`), the one used for every search."""
    return fold(text)
