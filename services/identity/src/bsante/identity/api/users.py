"""Accounts of the acting structure: create, list, grant roles (structure administrators)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Annotated, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, model_validator

from bsante.chassis.api import ServiceDep
from bsante.chassis.auth import Principal, allowed
from bsante.chassis.errors import Conflict, DomainError, NotFound
from bsante.chassis.messaging import UnitOfWork
from bsante.chassis.store import Query
from bsante.chassis.text import SafeText
from bsante.contracts.events import RoleGranted, RoleRevoked, UserCreated, UserJoinedStructure
from bsante.contracts.permissions import Action
from bsante.identity.api.deps import Limit, Offset, PageInfo
from bsante.identity.directory.identifiers import RPPS
from bsante.identity.domain import User, check_password_rules, hash_password, normalise_username

router = APIRouter(prefix="/users", tags=["users"])
Admin = Annotated[Principal, allowed(Action.MANAGE_USERS)]
USERS = "users"
MEMBERSHIPS = "memberships"


def membership(user: User, structure_id: str) -> tuple[str, dict[str, str]]:
    """Document listing a user under a structure (the store filters scalars, not lists)."""
    return f"{structure_id}|{user.id}", {
        "structure_id": structure_id,
        "user_id": user.id,
        "username": user.username,
    }


class UserIn(BaseModel):
    username: str = Field(
        min_length=3, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$", description="Login, an e-mail"
    )
    display_name: SafeText = Field(min_length=1, max_length=200)
    password: str | None = Field(
        None, min_length=1, max_length=200, description="Omit for a CPS-card-only professional"
    )
    rpps: str | None = Field(
        None, pattern=r"^[0-9]{11}$", description="Links the account to a directory professional"
    )
    roles: list[str] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _credential(self) -> UserIn:
        if self.password is None and self.rpps is None:
            raise ValueError("a staff account needs a password")
        return self


class UserOut(BaseModel):
    id: str
    username: str
    display_name: str
    kind: Literal["professional", "staff"]
    rpps: str | None
    ps_id_nat: str | None
    profession: str | None
    active: bool
    roles: list[str] = Field(description="Roles granted in the acting structure")


class UserPage(PageInfo):
    items: list[UserOut]


async def _emit_role_changes(
    uow: UnitOfWork,
    user: User,
    structure: str,
    principal: Principal,
    granted: Iterable[str],
    revoked: Iterable[str],
) -> None:
    for role in granted:
        await uow.emit(
            RoleGranted(user_id=user.id, role=role, granted_by=principal.user_id),
            structure_id=structure,
            subject_id=user.id,
        )
    for role in revoked:
        await uow.emit(
            RoleRevoked(user_id=user.id, role=role, revoked_by=principal.user_id),
            structure_id=structure,
            subject_id=user.id,
        )


def _out(user: User, structure_id: str) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        kind=user.kind,
        rpps=user.rpps,
        ps_id_nat=user.ps_id_nat,
        profession=user.profession,
        active=user.active,
        roles=user.roles.get(structure_id, []),
    )


async def _member(svc: ServiceDep, principal: Principal, user_id: str) -> tuple[User, int]:
    doc = await svc.store.get(USERS, user_id) if len(user_id) <= 200 else None
    if doc is None or principal.acting_structure not in doc.data.get("structures", []):
        raise NotFound("No such user in this structure")
    return User.from_json(doc.data), doc.version


@router.post("", status_code=201, response_model=UserOut)
async def create_user(
    body: UserIn, principal: Admin, svc: ServiceDep, response: Response
) -> UserOut:
    """Create an account in the acting structure.

    With an RPPS the account is a professional's: the RPPS must be in the directory, and if the
    professional already has an account, that account joins the structure instead.
    """
    structure = principal.acting_structure
    username = normalise_username(body.username)
    profession: str | None = None
    ps_id_nat: str | None = None
    if body.rpps is not None:
        try:
            ps_id_nat = RPPS(body.rpps).ps_id_nat.value
        except ValueError as error:
            raise DomainError(
                "Invalid RPPS", errors=[{"field": "rpps", "message": str(error)}]
            ) from None
        professional = await svc.store.get("professionals", ps_id_nat)
        if professional is None:
            raise DomainError(
                "This RPPS is not in the directory",
                errors=[{"field": "rpps", "message": "unknown in the directory"}],
            )
        profession = professional.data.get("profession_code")
        existing = await svc.store.find(USERS, Query(where={"ps_id_nat": ps_id_nat}, limit=1))
        if existing:
            return await _join(svc, principal, existing[0].id, body.roles, response)
    if body.password is not None:
        check_password_rules(body.password, username=username)
    if await svc.store.find(USERS, Query(where={"username": username}, limit=1)):
        raise Conflict(
            "This user name is taken", errors=[{"field": "username", "message": "already used"}]
        )
    user = User(
        id=str(uuid.uuid4()),
        username=username,
        password_hash=hash_password(body.password) if body.password else None,
        display_name=body.display_name,
        structures=[structure],
        roles={structure: []},
        profession=profession,
        kind="professional" if ps_id_nat else "staff",
        ps_id_nat=ps_id_nat,
        rpps=body.rpps,
    )
    granted, revoked = user.set_roles(structure, body.roles)
    async with svc.messaging.unit_of_work() as uow:
        await uow.tx.insert(USERS, user.id, user.to_json())
        await uow.tx.insert(MEMBERSHIPS, *membership(user, structure))
        await uow.emit(
            UserCreated(
                user_id=user.id, kind=user.kind, ps_id_nat=ps_id_nat, created_by=principal.user_id
            ),
            structure_id=structure,
            subject_id=user.id,
        )
        await _emit_role_changes(uow, user, structure, principal, granted, revoked)
    response.headers["Location"] = f"users/{user.id}"
    return _out(user, structure)


async def _join(
    svc: ServiceDep, principal: Principal, user_id: str, roles: list[str], response: Response
) -> UserOut:
    structure = principal.acting_structure
    doc = await svc.store.get(USERS, user_id)
    assert doc is not None
    user = User.from_json(doc.data)
    if not user.join(structure):
        raise Conflict("This professional already has an account in this structure")
    granted, revoked = user.set_roles(structure, roles)
    async with svc.messaging.unit_of_work() as uow:
        await uow.tx.update(USERS, user.id, user.to_json(), doc.version)
        await uow.tx.insert(MEMBERSHIPS, *membership(user, structure))
        await uow.emit(
            UserJoinedStructure(user_id=user.id, added_by=principal.user_id),
            structure_id=structure,
            subject_id=user.id,
        )
        await _emit_role_changes(uow, user, structure, principal, granted, revoked)
    response.headers["Location"] = f"users/{user.id}"
    return _out(user, structure)


@router.get("", response_model=UserPage)
async def list_users(
    principal: Admin, svc: ServiceDep, limit: Limit = 50, offset: Offset = 0
) -> UserPage:
    """Accounts acting for the acting structure, by user name."""
    where = {"structure_id": principal.acting_structure}
    found = await svc.store.find(
        MEMBERSHIPS, Query(where=where, order_by=[("username", False)], limit=limit, offset=offset)
    )
    users = await svc.store.get_many(USERS, [m.data["user_id"] for m in found])
    return UserPage(
        items=[
            _out(User.from_json(users[m.data["user_id"]].data), principal.acting_structure)
            for m in found
            if m.data["user_id"] in users
        ],
        total=await svc.store.count(MEMBERSHIPS, where),
        limit=limit,
        offset=offset,
    )


@router.get("/{user_id}", response_model=UserOut)
async def get_user(user_id: str, principal: Admin, svc: ServiceDep) -> UserOut:
    user, _ = await _member(svc, principal, user_id)
    return _out(user, principal.acting_structure)


class RolesIn(BaseModel):
    roles: list[str] = Field(max_length=20)


@router.put("/{user_id}/roles", response_model=UserOut)
async def set_roles(user_id: str, body: RolesIn, principal: Admin, svc: ServiceDep) -> UserOut:
    """Replace the user's roles in the acting structure (roles elsewhere are untouched)."""
    user, version = await _member(svc, principal, user_id)
    structure = principal.acting_structure
    granted, revoked = user.set_roles(structure, body.roles)
    async with svc.messaging.unit_of_work() as uow:
        await uow.tx.update(USERS, user.id, user.to_json(), version)
        await _emit_role_changes(uow, user, structure, principal, granted, revoked)
    return _out(user, structure)
