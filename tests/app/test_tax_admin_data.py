"""AdminData: exact values, the get-admindata dict, validation with the field named."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from typing import Any

import pytest
from impots.tax import COURSE_ADMIN_DATA, AdminData


def test_to_dict_is_the_get_admindata_response() -> None:
    data = COURSE_ADMIN_DATA.to_dict()
    assert data["limites"] == [9964.0, 27519.0, 73779.0, 156244.0, 0.0]
    assert data["coeffr"] == [0.0, 0.14, 0.3, 0.41, 0.45]
    assert data["coeffn"] == [0.0, 1394.96, 5798.0, 13913.69, 20163.45]
    assert data["plafond_qf_demi_part"] == 1551.0
    assert data["abattement_dixpourcent_min"] == 437.0
    assert len(data) == 13
    assert all(type(value) is float for key in ("limites", "coeffr", "coeffn") for value in data[key])
    # Every call builds new lists: a caller changing one cannot touch the shared object.
    data["limites"][4] = 93749.0
    assert COURSE_ADMIN_DATA.to_dict()["limites"][4] == 0.0


def test_from_mapping_round_trip_is_exact() -> None:
    course_json = {**COURSE_ADMIN_DATA.to_dict(), "id": 1}
    rebuilt = AdminData.from_mapping(course_json)
    assert rebuilt == COURSE_ADMIN_DATA
    assert rebuilt.coeffn[3] == Decimal("13913.69")
    assert rebuilt.scaled_brackets == COURSE_ADMIN_DATA.scaled_brackets


def test_database_decimals_compare_equal() -> None:
    # DECIMAL(12,2) columns give 9964.00, 0.1400 ...: equal values, equal objects.
    padded = dataclasses.replace(
        COURSE_ADMIN_DATA,
        limites=tuple(Decimal(value).quantize(Decimal("0.01")) for value in COURSE_ADMIN_DATA.limites),
        coeffr=tuple(Decimal(value).quantize(Decimal("0.0001")) for value in COURSE_ADMIN_DATA.coeffr),
        plafond_qf_demi_part=Decimal("1551.00"),
    )
    assert padded == COURSE_ADMIN_DATA
    assert padded.plafond_qf_demi_part == 1551 and type(padded.plafond_qf_demi_part) is int


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"limites": (1, 2, 3)}, "limites"),
        ({"coeffr": "0.1,0.2"}, "coeffr"),
        ({"limites": (9964, 9000, 73779, 156244, 0)}, "limites"),
        ({"coeffr": (0, 0.14, 1.3, 0.41, 0.45)}, "coeffr[2]"),
        ({"coeffn": (0, "x", 0, 0, 0)}, "coeffn[1]"),
        ({"coeffn": (0, float("nan"), 0, 0, 0)}, "coeffn[1]"),
        ({"plafond_qf_demi_part": 1551.5}, "plafond_qf_demi_part"),
        ({"plafond_decote_couple": -1}, "plafond_decote_couple"),
        ({"valeur_reduc_demi_part": None}, "valeur_reduc_demi_part"),
        ({"abattement_dixpourcent_min": 20000}, "abattement_dixpourcent_min"),
    ],
)
def test_invalid_admin_data_names_the_field(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match="admin data: " + re.escape(named)):
        dataclasses.replace(COURSE_ADMIN_DATA, **changes)


def test_from_mapping_names_missing_keys() -> None:
    data = COURSE_ADMIN_DATA.to_dict()
    del data["coeffn"], data["plafond_decote_couple"]
    with pytest.raises(ValueError, match="missing keys: coeffn, plafond_decote_couple"):
        AdminData.from_mapping(data)
