"""Accounts of a structure: create, join (a professional's account), roles, own password."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from bsante.chassis.errors import AccessDenied, ConflictError, NotFoundError, RuleViolation
from bsante.chassis.messaging import UnitOfWork
from bsante.chassis.store import DuplicateDocument
from bsante.contracts.events import RoleGranted, RoleRevoked, UserCreated, UserJoinedStructure
from bsante.identity.accounts import (
    MEMBERSHIPS,
    PROFESSIONAL_ACCOUNTS,
    USERNAMES,
    USERS,
    Accounts,
    insert_account,
    membership,
)
from bsante.identity.directory.identifiers import RPPS
from bsante.identity.domain import (
    LockoutPolicy,
    User,
    check_password_rules,
    normalise_username,
    throttle_key,
)
from bsante.identity.handlers import retried, throttle
from bsante.identity.ports import Clock, PasswordHasher, UnitOfWorkFactory

USERNAME_FORM = re.compile(r"[^@\s]+@[^@\s]+")


class UsernameTaken(ConflictError):
    def __init__(self) -> None:
        super().__init__(
            "This user name is taken", errors=[{"field": "username", "message": "already used"}]
        )


class AlreadyMember(ConflictError):
    def __init__(self) -> None:
        super().__init__("This professional already has an account in this structure")


class InvalidRpps(RuleViolation):
    """The RPPS is malformed or not in the directory."""


class NoSuchUser(NotFoundError):
    def __init__(self) -> None:
        super().__init__("No such user in this structure")


class WrongCurrentPassword(AccessDenied):
    """403, not 401: the session is fine, the password typed to confirm the change is not."""

    def __init__(self) -> None:
        super().__init__(
            "Wrong current password",
            errors=[{"field": "current_password", "message": "does not match"}],
        )


@dataclass(frozen=True)
class CreateUser:
    structure_id: str
    created_by: str
    username: str
    display_name: str
    password: str | None
    rpps: str | None
    roles: list[str]


@dataclass(frozen=True)
class AccountResult:
    user: User
    created: bool  # False: an existing professional's account joined the structure


async def _emit_role_changes(
    uow: UnitOfWork,
    user: User,
    structure: str,
    actor: str,
    granted: Iterable[str],
    revoked: Iterable[str],
) -> None:
    for role in granted:
        await uow.emit(
            RoleGranted(user_id=user.id, role=role, granted_by=actor),
            structure_id=structure,
            subject_id=user.id,
        )
    for role in revoked:
        await uow.emit(
            RoleRevoked(user_id=user.id, role=role, revoked_by=actor),
            structure_id=structure,
            subject_id=user.id,
        )


async def create_user(
    cmd: CreateUser, *, uow: UnitOfWorkFactory, accounts: Accounts, hasher: PasswordHasher
) -> AccountResult:
    """Create an account in the structure.

    With an RPPS the account is a professional's: the RPPS must be in the directory, and if the
    professional already has an account, that account joins the structure instead. The user
    name and the professional are claimed in the creating transaction (see `accounts`).
    """
    username = normalise_username(cmd.username)
    if not USERNAME_FORM.fullmatch(username):
        # Compatibility forms can fold into a second "@" or a space.
        raise RuleViolation(
            "The user name must be one e-mail address",
            errors=[{"field": "username", "message": "not an e-mail address once normalised"}],
        )
    profession: str | None = None
    ps_id_nat: str | None = None
    if cmd.rpps is not None:
        try:
            ps_id_nat = RPPS(cmd.rpps).ps_id_nat.value
        except ValueError as error:
            raise InvalidRpps(
                "Invalid RPPS", errors=[{"field": "rpps", "message": str(error)}]
            ) from None
        professional = await accounts.professional(ps_id_nat)
        if professional is None:
            raise InvalidRpps(
                "This RPPS is not in the directory",
                errors=[{"field": "rpps", "message": "unknown in the directory"}],
            )
        profession = professional.get("profession_code")
        existing = await accounts.account_of_professional(ps_id_nat)
        if existing:
            return await join_structure(cmd, existing, uow=uow)
    if cmd.password is not None:
        check_password_rules(cmd.password, username=username)
    password_hash = await hasher.hash(cmd.password) if cmd.password else None
    user = User(
        id=str(uuid.uuid4()),
        username=username,
        password_hash=password_hash,
        display_name=cmd.display_name,
        structures=[cmd.structure_id],
        roles={cmd.structure_id: []},
        profession=profession,
        kind="professional" if ps_id_nat else "staff",
        ps_id_nat=ps_id_nat,
        rpps=cmd.rpps,
    )
    granted, revoked = user.set_roles(cmd.structure_id, cmd.roles)
    try:
        async with uow() as unit:
            await insert_account(unit.tx, user)
            await unit.emit(
                UserCreated(
                    user_id=user.id, kind=user.kind, ps_id_nat=ps_id_nat, created_by=cmd.created_by
                ),
                structure_id=cmd.structure_id,
                subject_id=user.id,
            )
            await _emit_role_changes(unit, user, cmd.structure_id, cmd.created_by, granted, revoked)
    except DuplicateDocument as taken:
        if taken.collection == USERNAMES:
            raise UsernameTaken() from None
        if taken.collection == PROFESSIONAL_ACCOUNTS and ps_id_nat:
            # A concurrent creation gave the professional an account first: join it.
            existing = await accounts.account_of_professional(ps_id_nat)
            if existing:
                return await join_structure(cmd, existing, uow=uow)
        raise
    return AccountResult(user, created=True)


async def join_structure(cmd: CreateUser, user_id: str, *, uow: UnitOfWorkFactory) -> AccountResult:
    """An existing professional's account starts acting for the structure too."""

    async def once() -> User:
        async with uow() as unit:
            doc = await unit.tx.get(USERS, user_id)
            if doc is None:
                raise NoSuchUser()
            user = User.from_json(doc.data)
            if not user.join(cmd.structure_id):
                raise AlreadyMember()
            granted, revoked = user.set_roles(cmd.structure_id, cmd.roles)
            await unit.tx.update(USERS, user.id, user.to_json(), doc.version)
            await unit.tx.insert(MEMBERSHIPS, *membership(user, cmd.structure_id))
            await unit.emit(
                UserJoinedStructure(user_id=user.id, added_by=cmd.created_by),
                structure_id=cmd.structure_id,
                subject_id=user.id,
            )
            await _emit_role_changes(unit, user, cmd.structure_id, cmd.created_by, granted, revoked)
            return user

    return AccountResult(await retried(once), created=False)


@dataclass(frozen=True)
class SetRoles:
    structure_id: str
    user_id: str
    roles: list[str]
    changed_by: str


async def set_roles(cmd: SetRoles, *, uow: UnitOfWorkFactory) -> User:
    """Replace the user's roles in the structure (roles elsewhere are untouched)."""

    async def once() -> User:
        async with uow() as unit:
            doc = await unit.tx.get(USERS, cmd.user_id) if len(cmd.user_id) <= 200 else None
            if doc is None or cmd.structure_id not in doc.data.get("structures", []):
                raise NoSuchUser()
            user = User.from_json(doc.data)
            granted, revoked = user.set_roles(cmd.structure_id, cmd.roles)
            await unit.tx.update(USERS, user.id, user.to_json(), doc.version)
            await _emit_role_changes(unit, user, cmd.structure_id, cmd.changed_by, granted, revoked)
            return user

    return await retried(once)


@dataclass(frozen=True)
class ChangePassword:
    user_id: str
    current_password: str
    new_password: str


async def change_password(
    cmd: ChangePassword,
    *,
    uow: UnitOfWorkFactory,
    accounts: Accounts,
    hasher: PasswordHasher,
    clock: Clock,
    lockout: LockoutPolicy,
) -> None:
    """Set a new password after checking the current one.

    The check is throttled like a login (same counter): a stolen access token must not become
    a way to guess the password without limit.
    """
    found = await accounts.get(cmd.user_id)
    if found is None:
        raise NoSuchUser()
    user, version = found
    attempt = await throttle.count_attempt(uow, throttle_key(user.username), clock(), lockout)
    if not await hasher.verify(user.password_hash, cmd.current_password):
        await throttle.failed(uow, attempt, user)
        raise WrongCurrentPassword()
    await throttle.succeeded(uow, attempt)
    check_password_rules(cmd.new_password, username=user.username)
    user.password_hash = await hasher.hash(cmd.new_password)
    # At the version read before checking: a concurrent change of the account is a 409.
    async with uow() as unit:
        await unit.tx.update(USERS, user.id, user.to_json(), version)
