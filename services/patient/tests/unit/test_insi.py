"""Unit tests for the INSi simulator (result codes 00/01/02 and SOAP-like faults)."""

from datetime import date

import pytest

from bsante.patient.identity.insi import (
    ACTION_SEARCH_BY_TRAITS,
    InsiClient,
    InsiFaultError,
    InsiIdentity,
    InsiResultCode,
    InsiSimulator,
    SearchByTraits,
    SearchByVitale,
    SimulatedPerson,
    VitaleLink,
    parse_insi_birth_date,
)
from bsante.patient.identity.nir import Ins
from bsante.patient.identity.traits import Sex

# ECETINSI Pierre-Alain: public INSi test identity (response fixture TEST_2.04_cas2).
ECETINSI = InsiIdentity(
    ins=Ins.from_insi("1090763220834", "89", "1.2.250.1.213.1.4.8"),
    birth_name="ECETINSI",
    given_names="PIERRE-ALAIN MURIEL FLORIANT",
    sex=Sex.MALE,
    birth_date_raw="2009-07-14",
    birth_place="63220",
    historical_ins=(Ins.from_insi("2090763220834", "39", "1.2.250.1.213.1.4.8"),),
)
# Two homonyms born the same day: only the second given name or the place tells them apart.
TWIN_A = InsiIdentity(
    ins=Ins("279035121518989", "1.2.250.1.213.1.4.10"),  # type: ignore[arg-type]
    birth_name="MARTIN",
    given_names="MARIE ANNE",
    sex=Sex.FEMALE,
    birth_date_raw="1979-03-00",
    birth_place="75056",
)
TWIN_B = InsiIdentity(
    ins=Ins("162018885045327", "1.2.250.1.213.1.4.10"),  # type: ignore[arg-type]
    birth_name="MARTIN",
    given_names="MARIE CLAIRE",
    sex=Sex.FEMALE,
    birth_date_raw="1979-03-01",
    birth_place="99134",
)
HOLDER = "1620188850453"


@pytest.fixture
def insi() -> InsiSimulator:
    return InsiSimulator(
        [
            SimulatedPerson(identity=ECETINSI, vitale=(VitaleLink(HOLDER, "1"),)),
            SimulatedPerson(identity=TWIN_A, vitale=(VitaleLink(HOLDER, "1"),)),
            SimulatedPerson(identity=TWIN_B, vitale=(VitaleLink(HOLDER, "2"),)),
        ],
        today=date(2025, 6, 1),
    )


def by_traits(**kw: str | None) -> SearchByTraits:
    values: dict[str, str | None] = {
        "birth_name": "ECETINSI",
        "given_names": "PIERRE-ALAIN",
        "sex": "M",
        "birth_date": "2009-07-14",
    }
    values.update(kw)
    return SearchByTraits(**values)  # type: ignore[arg-type]


def test_simulator_is_an_insi_client(insi: InsiSimulator) -> None:
    client: InsiClient = insi
    assert client.search_by_traits(by_traits()).code is InsiResultCode.FOUND
    assert insi.calls[0][0] == ACTION_SEARCH_BY_TRAITS


def test_code_00_one_identity(insi: InsiSimulator) -> None:
    response = insi.search_by_traits(by_traits(birth_name="Écetinsi", given_names="Pierre Alain"))
    assert (response.code.value, response.label) == ("00", "OK")
    assert response.identity is ECETINSI
    traits = response.identity.traits()
    assert traits.first_birth_given_name == "PIERRE-ALAIN"
    assert response.identity.ins.matricule == "109076322083489"


def test_code_01_none(insi: InsiSimulator) -> None:
    response = insi.search_by_traits(by_traits(birth_date="2009-07-15"))
    assert (response.code.value, response.label) == ("01", "Aucune identite trouvee")
    assert response.identity is None
    assert insi.search_by_traits(by_traits(given_names="PIERRE")).code is (
        InsiResultCode.NOT_FOUND
    )  # "PIERRE" is not the compound first name


def test_code_02_several_then_disambiguated(insi: InsiSimulator) -> None:
    query = by_traits(birth_name="MARTIN", given_names="MARIE", sex="F", birth_date="1979-03-01")
    response = insi.search_by_traits(query)
    assert (response.code.value, response.label) == ("02", "Plusieurs identites trouvees")
    assert response.identity is None
    # RNIV advice on 02: add the other given names, then the birth place.
    more_names = by_traits(
        birth_name="MARTIN", given_names="MARIE ANNE", sex="F", birth_date="1979-03-01"
    )
    assert insi.search_by_traits(more_names).identity is TWIN_A
    with_place = by_traits(
        birth_name="MARTIN",
        given_names="MARIE",
        sex="F",
        birth_date="1979-03-01",
        birth_place="99134",
    )
    assert insi.search_by_traits(with_place).identity is TWIN_B


def test_partially_unknown_and_lunar_dates() -> None:
    assert parse_insi_birth_date("1979-03-00") == date(1979, 3, 1)
    assert parse_insi_birth_date("1979-00-00") == date(1979, 1, 1)
    assert parse_insi_birth_date("1981-02-31") == date(1981, 2, 28)
    with pytest.raises(ValueError):
        parse_insi_birth_date("1981-13-01")


@pytest.mark.parametrize(
    ("kw", "element"),
    [
        ({"birth_name": ""}, "NomNaissance"),
        ({"given_names": None}, "Prenom"),
        ({"sex": ""}, "Sexe"),
        ({"sex": "I"}, "Sexe"),
        ({"birth_date": "14/07/2009"}, "DateNaissance"),
        ({"birth_date": "2009-13-14"}, "DateNaissance"),
        ({"birth_date": "2030-01-01"}, "DateNaissance"),
        ({"birth_place": "63 220"}, "LieuNaissance"),
        ({"birth_name": "ECET1NSI"}, "NomNaissance"),
    ],
)
def test_malformed_requests_are_faults(
    insi: InsiSimulator, kw: dict[str, str | None], element: str
) -> None:
    with pytest.raises(InsiFaultError) as exc:
        insi.search_by_traits(by_traits(**kw))
    assert exc.value.code == "soap:Sender" and exc.value.field == element
    assert exc.value.subcode.startswith("simu_")


def test_vitale_codes(insi: InsiSimulator) -> None:
    found = insi.search_by_vitale(SearchByVitale(holder_nir=HOLDER, birth_date="2009-07-14"))
    assert found.code is InsiResultCode.FOUND and found.identity is ECETINSI
    # Lunar date on the card, rank 2 (twin): resolves TWIN_B only.
    twin = insi.search_by_vitale(
        SearchByVitale(holder_nir=HOLDER + "27", birth_date="1979-03-01", birth_rank="2")
    )
    assert twin.identity is TWIN_B
    none = insi.search_by_vitale(SearchByVitale(holder_nir=HOLDER, birth_date="2000-01-01"))
    assert none.code is InsiResultCode.NOT_FOUND


def test_vitale_several_then_beneficiary_number(insi: InsiSimulator) -> None:
    extra = SimulatedPerson(identity=TWIN_B, vitale=(VitaleLink(HOLDER, "1"),))
    sim = InsiSimulator(
        [SimulatedPerson(identity=TWIN_A, vitale=(VitaleLink(HOLDER),)), extra],
        today=date(2025, 6, 1),
    )
    request = SearchByVitale(holder_nir=HOLDER, birth_date="1979-03-01")
    assert sim.search_by_vitale(request).code is InsiResultCode.SEVERAL_FOUND
    precise = SearchByVitale(
        holder_nir=HOLDER, birth_date="1979-03-01", beneficiary_nir="2790351215189"
    )
    assert sim.search_by_vitale(precise).identity is TWIN_A


@pytest.mark.parametrize(
    ("kw", "element"),
    [
        ({"holder_nir": ""}, "MatriculeOD"),
        ({"holder_nir": "16201888504"}, "MatriculeOD"),
        ({"holder_nir": HOLDER + "28"}, "MatriculeOD"),  # wrong key
        ({"birth_rank": "0"}, "RangNaissance"),
        ({"birth_date": "1979-3-1"}, "DateNaissance"),
    ],
)
def test_vitale_malformed(insi: InsiSimulator, kw: dict[str, str], element: str) -> None:
    values = {"holder_nir": HOLDER, "birth_date": "2009-07-14"} | kw
    with pytest.raises(InsiFaultError) as exc:
        insi.search_by_vitale(SearchByVitale(**values))
    assert exc.value.field == element


def test_partial_birth_dates_are_told_apart() -> None:
    from bsante.patient.identity.insi import is_partial_birth_date

    assert not is_partial_birth_date("1941-03-02")
    assert is_partial_birth_date("1941-00-00")
    assert is_partial_birth_date("1941-03-00")
    assert is_partial_birth_date("1941-02-30")  # a lunar day
    assert not is_partial_birth_date("2024-02-29")
