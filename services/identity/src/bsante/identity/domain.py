"""Users, structures and password credentials: rules without I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2id with the library's RFC 9106 low-memory profile.
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass
class User:
    id: str
    username: str
    password_hash: str
    display_name: str
    structures: list[str]
    roles: dict[str, list[str]] = field(default_factory=dict)
    profession: str | None = None
    active: bool = True

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
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> User:
        return cls(**data)


@dataclass
class Structure:
    id: str
    name: str
    finess: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "finess": self.finess}
