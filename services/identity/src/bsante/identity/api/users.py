"""Accounts of the acting structure: create, list, grant roles (structure administrators)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, model_validator

from bsante.chassis.auth import Principal, allowed
from bsante.chassis.openapi import creates
from bsante.chassis.text import SafeText
from bsante.contracts.permissions import Action
from bsante.identity.api.deps import (
    AccountsDep,
    HasherDep,
    Limit,
    Offset,
    PageInfo,
    UnitOfWorkDep,
)
from bsante.identity.domain import User
from bsante.identity.handlers import accounts as handlers
from bsante.identity.handlers.accounts import NoSuchUser

router = APIRouter(prefix="/users", tags=["users"])
Admin = Annotated[Principal, allowed(Action.MANAGE_USERS)]


class UserIn(BaseModel):
    username: SafeText = Field(
        min_length=3,
        max_length=200,
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="Login, an e-mail; case-insensitive (stored in lower case)",
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


@router.post("", status_code=201, response_model=UserOut, openapi_extra=creates("user_id"))
async def create_user(
    body: UserIn,
    principal: Admin,
    uow: UnitOfWorkDep,
    accounts: AccountsDep,
    hasher: HasherDep,
    response: Response,
) -> UserOut:
    """Create an account in the acting structure; the user name is unique (409 if taken).

    With an RPPS the account is a professional's: the RPPS must be in the directory, and if the
    professional already has an account, that account joins the structure instead.
    """
    result = await handlers.create_user(
        handlers.CreateUser(
            structure_id=principal.acting_structure,
            created_by=principal.user_id,
            username=body.username,
            display_name=body.display_name,
            password=body.password,
            rpps=body.rpps,
            roles=body.roles,
        ),
        uow=uow,
        accounts=accounts,
        hasher=hasher,
    )
    response.headers["Location"] = f"users/{result.user.id}"
    return _out(result.user, principal.acting_structure)


@router.get("", response_model=UserPage)
async def list_users(
    principal: Admin, accounts: AccountsDep, limit: Limit = 50, offset: Offset = 0
) -> UserPage:
    """Accounts acting for the acting structure, by user name."""
    users, total = await accounts.members(principal.acting_structure, limit=limit, offset=offset)
    return UserPage(
        items=[_out(u, principal.acting_structure) for u in users],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{user_id}", response_model=UserOut)
async def get_user(user_id: str, principal: Admin, accounts: AccountsDep) -> UserOut:
    found = await accounts.member(principal.acting_structure, user_id)
    if found is None:
        raise NoSuchUser()
    return _out(found[0], principal.acting_structure)


class RolesIn(BaseModel):
    roles: list[str] = Field(max_length=20)


@router.put("/{user_id}/roles", response_model=UserOut)
async def set_roles(user_id: str, body: RolesIn, principal: Admin, uow: UnitOfWorkDep) -> UserOut:
    """Replace the user's roles in the acting structure (roles elsewhere are untouched)."""
    user = await handlers.set_roles(
        handlers.SetRoles(principal.acting_structure, user_id, body.roles, principal.user_id),
        uow=uow,
    )
    return _out(user, principal.acting_structure)
