"""Identity's HTTP API: the routers of every resource, in the order they are mounted."""

from __future__ import annotations

from fastapi import APIRouter

from bsante.identity.api import audit, auth, directory, internal, oauth, psc, structures, users

routers: list[APIRouter] = [
    auth.router,
    psc.router,
    users.router,
    structures.router,
    directory.router,
    audit.router,
    oauth.router,
    oauth.admin,
    internal.router,
]
