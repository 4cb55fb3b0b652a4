"""Properties of the tax rule: equal to a literal Fraction transcription of spec §1.3, on the course data
and on random admin data; bounds of each output; no mutation; thread safety."""

from __future__ import annotations

import dataclasses
import math
import random
import threading
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from impots.tax import COURSE_ADMIN_DATA, AdminData, TaxResult, compute_tax
from impots.tax.admin_data import CONSTANT_NAMES


def reference_tax(admin: AdminData, marie: bool, enfants: int, salaire: int) -> TaxResult:
    """Spec §1.3 step by step, in exact rationals (independent of the integer implementation)."""
    limites = [Fraction(value) for value in admin.limites]
    coeffr = [Fraction(value) for value in admin.coeffr]
    coeffn = [Fraction(value) for value in admin.coeffn]

    def taxable_income() -> int:
        allowance = Fraction(10, 100) * salaire
        if allowance > admin.abattement_dixpourcent_max:
            allowance = Fraction(admin.abattement_dixpourcent_max)
        if allowance < admin.abattement_dixpourcent_min:
            allowance = Fraction(admin.abattement_dixpourcent_min)
        return math.floor(salaire - allowance)

    def gross_tax(children: int) -> tuple[int, int, Fraction]:
        parts = (2 if marie else 1) + Fraction(children, 2)
        if children >= 3:
            parts += Fraction(1, 2) * (children - 2)
        revenu = taxable_income()
        surcote = max(0, math.floor(revenu - Fraction(9, 10) * salaire))
        quotient = revenu / parts
        index = 4
        for row in range(4):
            if quotient <= limites[row]:
                index = row
                break
        return math.floor(revenu * coeffr[index] - parts * coeffn[index]), surcote, coeffr[index]

    impot1, surcote1, taux1 = gross_tax(enfants)
    if enfants > 0:
        impot2, surcote2, taux2 = gross_tax(0)
        if enfants < 3:
            impot2 -= enfants * admin.plafond_qf_demi_part
        else:
            impot2 -= 2 * admin.plafond_qf_demi_part + (enfants - 2) * 2 * admin.plafond_qf_demi_part
    else:
        impot2, surcote2, taux2 = impot1, surcote1, taux1
    if impot1 >= impot2:
        impot, surcote, taux = Fraction(impot1), surcote1, taux1
    else:
        impot, surcote, taux = Fraction(impot2), (impot2 - impot1) + surcote2, taux2

    seuil = admin.plafond_impot_couple_pour_decote if marie else admin.plafond_impot_celibataire_pour_decote
    base = admin.plafond_decote_couple if marie else admin.plafond_decote_celibataire
    decote = 0
    if impot < seuil:
        raw = base - Fraction(3, 4) * impot
        if raw > impot:
            raw = impot
        if raw < 0:
            raw = Fraction(0)
        decote = math.ceil(raw)
    impot -= decote

    plafond = (
        admin.plafond_revenus_couple_pour_reduction
        if marie
        else admin.plafond_revenus_celibataire_pour_reduction
    )
    plafond += enfants * admin.valeur_reduc_demi_part
    if enfants > 2:
        plafond += (enfants - 2) * admin.valeur_reduc_demi_part
    reduction = math.ceil(Fraction(1, 5) * impot) if taxable_income() < plafond else 0
    impot -= reduction
    return TaxResult(math.floor(impot), surcote, decote, reduction, float(taux))


marie_st = st.booleans()
enfants_st = st.integers(min_value=0, max_value=12)
# Mostly realistic salaries, plus the edges of the allowance clamp and of the brackets.
salaire_st = st.one_of(
    st.integers(min_value=0, max_value=1_000_000),
    st.sampled_from([0, 1, 436, 437, 4369, 4370, 4371, 125019, 125020, 125021, 10**9]),
)


def _decimal(places: int, low: int, high: int) -> st.SearchStrategy[Decimal]:
    return st.integers(min_value=low * 10**places, max_value=high * 10**places).map(
        lambda value: Decimal(value).scaleb(-places)
    )


@st.composite
def admin_data_st(draw: st.DrawFn) -> AdminData:
    """Random valid admin data: increasing limits with cents, rates with up to 4 decimals, whole constants."""
    limites = sorted(draw(st.sets(_decimal(2, 1, 300_000), min_size=4, max_size=4)))
    amounts = st.integers(min_value=0, max_value=60_000)
    constants = {name: draw(amounts) for name in CONSTANT_NAMES}
    low, high = sorted((constants["abattement_dixpourcent_min"], constants["abattement_dixpourcent_max"]))
    constants.update(abattement_dixpourcent_min=low, abattement_dixpourcent_max=high)
    return AdminData(
        limites=(*limites, draw(_decimal(2, 0, 300_000))),
        coeffr=tuple(draw(st.lists(_decimal(4, 0, 1), min_size=5, max_size=5))),
        coeffn=tuple(draw(st.lists(_decimal(2, 0, 50_000), min_size=5, max_size=5))),
        **constants,
    )


@settings(max_examples=3000, deadline=None)
@given(marie_st, enfants_st, salaire_st)
def test_equals_reference_on_course_data(marie: bool, enfants: int, salaire: int) -> None:
    assert compute_tax(COURSE_ADMIN_DATA, marie, enfants, salaire) == reference_tax(
        COURSE_ADMIN_DATA, marie, enfants, salaire
    )


@settings(max_examples=1500, deadline=None)
@given(admin_data_st(), marie_st, enfants_st, salaire_st)
def test_equals_reference_on_random_admin_data(
    admin: AdminData, marie: bool, enfants: int, salaire: int
) -> None:
    assert compute_tax(admin, marie, enfants, salaire) == reference_tax(admin, marie, enfants, salaire)


@settings(max_examples=2000, deadline=None)
@given(marie_st, enfants_st, salaire_st)
def test_outputs_are_within_bounds(marie: bool, enfants: int, salaire: int) -> None:
    result = compute_tax(COURSE_ADMIN_DATA, marie, enfants, salaire)
    assert result.impot >= 0
    assert result.decote >= 0
    assert result.reduction >= 0
    assert result.surcote >= 0
    assert result.taux in {0, 0.14, 0.3, 0.41, 0.45}


# Not a law of French tax rules in general: checked exhaustively for the course data (salaire 0..600000,
# 0..12 children, both family situations: no decrease; above that every case is in the open bracket),
# so it is asserted for this data only.
@settings(max_examples=2000, deadline=None)
@given(marie_st, enfants_st, salaire_st, st.integers(min_value=1, max_value=50_000))
def test_course_data_tax_does_not_decrease_with_salary(
    marie: bool, enfants: int, salaire: int, raise_: int
) -> None:
    before = compute_tax(COURSE_ADMIN_DATA, marie, enfants, salaire).impot
    assert compute_tax(COURSE_ADMIN_DATA, marie, enfants, salaire + raise_).impot >= before


def test_float32_column_values_change_no_course_vector() -> None:
    # What the course's MySQL FLOAT columns return (spec §1.7): our exact types avoid it, but the
    # documented claim that the 11 vectors survive it is checked here.
    float32 = dataclasses.replace(
        COURSE_ADMIN_DATA,
        coeffn=(Decimal(0), Decimal("1394.96"), Decimal(5798), Decimal("13913.7"), Decimal("20163.4")),
    )
    for marie, enfants, salaire in [
        (True, 2, 55555),
        (False, 2, 100000),
        (False, 0, 200000),
        (True, 3, 200000),
    ]:
        assert compute_tax(float32, marie, enfants, salaire) == compute_tax(
            COURSE_ADMIN_DATA, marie, enfants, salaire
        )


def test_admin_data_is_never_changed_by_computations() -> None:
    before = (dataclasses.asdict(COURSE_ADMIN_DATA), COURSE_ADMIN_DATA.to_dict())
    generator = random.Random(17)
    for _ in range(20_000):
        compute_tax(
            COURSE_ADMIN_DATA,
            generator.random() < 0.5,
            generator.randint(0, 8),
            generator.randint(0, 400_000),
        )
    assert (dataclasses.asdict(COURSE_ADMIN_DATA), COURSE_ADMIN_DATA.to_dict()) == before
    assert COURSE_ADMIN_DATA.to_dict()["limites"][4] == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        COURSE_ADMIN_DATA.limites = ()  # type: ignore[misc]


def test_concurrent_threads_get_the_sequential_results() -> None:
    generator = random.Random(2019)
    inputs = [
        (generator.random() < 0.5, generator.randint(0, 8), generator.randint(0, 400_000))
        for _ in range(5_000)
    ]
    expected = [compute_tax(COURSE_ADMIN_DATA, *arguments) for arguments in inputs]
    failures: list[str] = []
    barrier = threading.Barrier(8)

    def worker(offset: int) -> None:
        barrier.wait()
        for round_ in range(3):
            for index in range(len(inputs)):
                position = (index + offset * 611 + round_ * 97) % len(inputs)
                if compute_tax(COURSE_ADMIN_DATA, *inputs[position]) != expected[position]:
                    failures.append(f"thread {offset}: input {inputs[position]}")
                if COURSE_ADMIN_DATA.to_dict()["limites"][4] != 0.0:
                    failures.append(f"thread {offset}: limites changed")

    threads = [threading.Thread(target=worker, args=(offset,)) for offset in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_result_to_dict_keys() -> None:
    assert TaxResult(1, 2, 3, 4, 0.3).to_dict() == {
        "impôt": 1,
        "surcôte": 2,
        "décôte": 3,
        "réduction": 4,
        "taux": 0.3,
    }
