"""Events of the identity service (topic bsante.identity.v1)."""

from __future__ import annotations

from typing import Literal

from bsante.contracts import topics
from bsante.contracts.events.base import Payload, event


@event(topics.IDENTITY)
class UserLoggedIn(Payload):
    """A user opened a session (password or CPS card)."""

    user_id: str
    method: Literal["password", "cps"]
