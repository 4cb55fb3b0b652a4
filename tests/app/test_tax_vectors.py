"""The tax rule on the course's reference data: the 11 vectors (all five outputs) and the §1.6 examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from impots.errors import ImpotsError
from impots.tax import COURSE_ADMIN_DATA, TaxResult, compute_tax
from impots.tax.rules import _gross_tax

VECTORS_FILE = Path("/work/shared/spec/course-vectors.json")
# The same 11 vectors as spec §2.1, kept here so the tests run where /work/shared does not exist.
VECTORS = [
    # id, marié, enfants, salaire, impôt, surcôte, décôte, réduction, taux
    (1, "oui", 2, 55555, 2814, 0, 0, 0, 0.14),
    (2, "oui", 2, 50000, 1384, 0, 384, 347, 0.14),
    (3, "oui", 3, 50000, 0, 0, 720, 0, 0.14),
    (4, "non", 2, 100000, 19884, 4480, 0, 0, 0.41),
    (5, "non", 3, 100000, 16782, 7176, 0, 0, 0.41),
    (6, "oui", 3, 100000, 9200, 2180, 0, 0, 0.3),
    (7, "oui", 5, 100000, 4230, 0, 0, 0, 0.14),
    (8, "non", 0, 100000, 22986, 0, 0, 0, 0.41),
    (9, "oui", 2, 30000, 0, 0, 0, 0, 0.0),
    (10, "non", 0, 200000, 64210, 7498, 0, 0, 0.45),
    (11, "oui", 3, 200000, 42842, 17283, 0, 0, 0.41),
]
KEYS = ("id", "marié", "enfants", "salaire", "impôt", "surcôte", "décôte", "réduction", "taux")


def _vectors() -> list[dict[str, Any]]:
    return [dict(zip(KEYS, row, strict=True)) for row in VECTORS]


@pytest.mark.skipif(not VECTORS_FILE.exists(), reason="the shared spec folder is not on this machine")
def test_embedded_vectors_equal_the_shared_file() -> None:
    assert json.loads(VECTORS_FILE.read_text(encoding="utf-8")) == _vectors()


@pytest.mark.parametrize("vector", _vectors(), ids=lambda vector: f"#{vector['id']}")
def test_course_vector(vector: dict[str, Any]) -> None:
    result = compute_tax(COURSE_ADMIN_DATA, vector["marié"] == "oui", vector["enfants"], vector["salaire"])
    assert result.to_dict() == {
        key: vector[key] for key in ("impôt", "surcôte", "décôte", "réduction", "taux")
    }
    assert type(result.impot) is int and type(result.taux) is float


def test_married_two_children_50000_decomposition() -> None:
    # R = 45000, parts 3: I1 = 0.14 x 45000 - 1394.96 x 3 = 2115; without children I2 = 3510 - 2 x 1551 = 408.
    assert _gross_tax(COURSE_ADMIN_DATA, 45000, 6) == (2115, 0.14)
    assert _gross_tax(COURSE_ADMIN_DATA, 45000, 4)[0] - 2 * 1551 == 408
    result = compute_tax(COURSE_ADMIN_DATA, True, 2, 50000)
    # décôte ceil(1970 - 0.75 x 2115) = 384 -> 1731; réduction ceil(0.2 x 1731) = 347 -> 1384
    assert (result.decote, result.reduction, result.impot) == (384, 347, 1384)
    assert result.impot + result.reduction + result.decote == 2115


def test_married_three_children_100000_decomposition() -> None:
    # R = 90000, parts 4: I1 = 7020; parts 2: 15404, minus the cap 4 x 1551 = 9200 > 7020.
    assert _gross_tax(COURSE_ADMIN_DATA, 90000, 8) == (7020, 0.14)
    assert _gross_tax(COURSE_ADMIN_DATA, 90000, 4) == (15404, 0.3)
    assert compute_tax(COURSE_ADMIN_DATA, True, 3, 100000) == TaxResult(9200, 2180, 0, 0, 0.3)


def test_single_200000_allowance_is_capped() -> None:
    # allowance 12502 instead of 20000: R = 187498, surcôte = R - 0.9 x 200000 = 7498
    result = compute_tax(COURSE_ADMIN_DATA, False, 0, 200000)
    assert result.surcote == 187498 - 180000
    assert result.impot == (187498 * 45 - 2016345) // 100


@pytest.mark.parametrize(
    ("marie", "enfants", "salaire", "code"),
    [
        ("oui", 0, 1000, 31),
        (1, 0, 1000, 31),
        (True, -1, 1000, 32),
        (True, 1.0, 1000, 32),
        (True, True, 1000, 32),
        (True, 0, -5, 33),
        (True, 0, "1000", 33),
        (False, 0, 1000.5, 33),
    ],
)
def test_invalid_arguments_raise_impots_error(marie: Any, enfants: Any, salaire: Any, code: int) -> None:
    with pytest.raises(ImpotsError) as raised:
        compute_tax(COURSE_ADMIN_DATA, marie, enfants, salaire)
    assert raised.value.code == code
    assert str(raised.value).startswith(f"MyException[{code}, ")


def test_impots_error_str() -> None:
    assert str(ImpotsError(18, "fichier absent")) == "MyException[18, fichier absent]"
