"""Events of the card bridge, the workstation agent reading cards (topic bsante.card-bridge.v1)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bsante.contracts import topics
from bsante.contracts.events.base import Payload, event


class VitaleBeneficiary(BaseModel):
    """One person on a carte Vitale, as the card holds them."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    quality: Literal["assure", "conjoint", "enfant", "autre"] | None = None
    nir: str | None = Field(
        default=None, description="The beneficiary's own NIR when the card holds it (13 or 15)"
    )
    birth_name: str
    used_name: str | None = None
    given_name: str
    birth_date: str = Field(description="As on the card: YYYY-MM-DD, possibly lunar (00 day)")
    birth_rank: int = Field(default=1, ge=1, le=999, description="Rang de naissance (twins)")
    sex: Literal["M", "F"] | None = None


@event(topics.CARD_BRIDGE)
class VitaleCardRead(Payload):
    """A carte Vitale was read on a workstation of the structure.

    Exception to the rule that payloads carry no identity traits: handing the card's data
    (NIR, names, birth dates) to the patient service is this event's purpose. Consumers must
    not log it, and keep it only as long as the professional needs to pick a beneficiary.
    """

    workstation_id: str
    read_by: str | None = Field(default=None, description="User id, when a CPS was present")
    holder_nir: str = Field(description="NIR of the card holder (ouvrant droit), 13 or 15")
    card_serial: str | None = None
    beneficiaries: list[VitaleBeneficiary] = Field(min_length=1, max_length=20)


CardKind = Literal["cps", "vitale", "unknown"]


@event(topics.CARD_BRIDGE)
class CardInserted(Payload):
    """A card was inserted in a reader of a workstation where a professional is signed in.

    Carries no card content: for a CPS, ``ps_id_nat`` of its certificate (a professional
    identifier, not patient data); for a Vitale, nothing (the read follows as VitaleCardRead).
    """

    workstation_id: str
    reader: str = Field(max_length=200)
    card_kind: CardKind
    user_id: str = Field(description="The signed-in professional on whose behalf it is told")
    ps_id_nat: str | None = None


@event(topics.CARD_BRIDGE)
class CardRemoved(Payload):
    """A card was pulled out of a reader of a workstation."""

    workstation_id: str
    reader: str = Field(max_length=200)
    card_kind: CardKind
    user_id: str
