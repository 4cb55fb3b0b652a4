"""The tax rule of spec §1.3, in exact integer arithmetic.

Every quantity of §1.3 is a rational number; the rule is computed on integers (the bracket table scaled
by a power of ten, shares counted in halves), so the result does not depend on the database's numeric
type and floor/ceil are exact. The admin data is only read, never written (spec §1.7).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from impots.errors import ImpotsError
from impots.tax.admin_data import AdminData

_LAST_BRACKET = 4


@dataclasses.dataclass(frozen=True, slots=True)
class TaxResult:
    """The five outputs of §1.4: whole euros, and the marginal rate ``taux`` of the retained computation."""

    impot: int
    surcote: int
    decote: int
    reduction: int
    taux: float

    def to_dict(self) -> dict[str, Any]:
        """The course's keys: ``{"impôt", "surcôte", "décôte", "réduction", "taux"}``."""
        return {
            "impôt": self.impot,
            "surcôte": self.surcote,
            "décôte": self.decote,
            "réduction": self.reduction,
            "taux": self.taux,
        }


def _is_natural(value: Any) -> bool:
    # type() rather than isinstance(): True/False are ints but not a number of children.
    return type(value) is int and value >= 0


def compute_tax(admin: AdminData, marie: bool, enfants: int, salaire: int) -> TaxResult:
    """Compute the tax of one household (spec §1.3).

    + admin: the bracket table and constants
    + marie: married or PACS-partnered
    + enfants: number of dependent children (int >= 0)
    + salaire: gross yearly salary in euros (int >= 0)

    Invalid arguments raise ``ImpotsError`` 31 (marie), 32 (enfants) or 33 (salaire).

    **Example:**

    .. code:: python

        compute_tax(COURSE_ADMIN_DATA, True, 2, 50000).impot  # 1384
    """
    if marie is not True and marie is not False:
        raise ImpotsError(31, f"marie [{marie!r}] doit être un booléen")
    if not _is_natural(enfants):
        raise ImpotsError(32, f"enfants [{enfants!r}] doit être un entier >= 0")
    if not _is_natural(salaire):
        raise ImpotsError(33, f"salaire [{salaire!r}] doit être un entier >= 0")

    # Taxable income R = floor(salaire - allowance), allowance = 10 % clamped to [min, max].
    if salaire > 10 * admin.abattement_dixpourcent_max:
        revenu = salaire - admin.abattement_dixpourcent_max
    elif salaire < 10 * admin.abattement_dixpourcent_min:
        revenu = salaire - admin.abattement_dixpourcent_min
    else:
        revenu = 9 * salaire // 10
    # floor(R - 0.9 salaire), clamped at 0; R does not depend on the shares, so S1 = S2.
    surcote_plafond = max(0, (10 * revenu - 9 * salaire) // 10)

    adult_halves = 4 if marie else 2
    # Half a share for each of the first two children, a whole share for each further child.
    child_halves = enfants + max(0, enfants - 2)

    impot_avec, taux_avec = _gross_tax(admin, revenu, adult_halves + child_halves)
    if enfants:
        impot_sans, taux_sans = _gross_tax(admin, revenu, adult_halves)
        impot_sans -= child_halves * admin.plafond_qf_demi_part
    else:
        impot_sans, taux_sans = impot_avec, taux_avec

    if impot_avec >= impot_sans:
        impot, surcote, taux = impot_avec, surcote_plafond, taux_avec
    else:
        impot, surcote, taux = impot_sans, impot_sans - impot_avec + surcote_plafond, taux_sans

    if marie:
        seuil_decote, base_decote = admin.plafond_impot_couple_pour_decote, admin.plafond_decote_couple
        plafond_reduction = admin.plafond_revenus_couple_pour_reduction
    else:
        seuil_decote, base_decote = (
            admin.plafond_impot_celibataire_pour_decote,
            admin.plafond_decote_celibataire,
        )
        plafond_reduction = admin.plafond_revenus_celibataire_pour_reduction

    # décôte = ceil(raw), raw = base - 0.75 impot, capped at impot, then floored at 0 (in this order:
    # a negative impot gives 0). Computed on 4 x the amounts to stay in integers.
    decote = 0
    if impot < seuil_decote:
        quadruple = 4 * base_decote - 3 * impot
        if quadruple > 4 * impot:
            decote = max(impot, 0)
        elif quadruple > 0:
            decote = -(-quadruple // 4)
    impot -= decote

    reduction = 0
    if revenu < plafond_reduction + child_halves * admin.valeur_reduc_demi_part:
        reduction = -(-impot // 5)  # ceil(0.2 impot)
    impot -= reduction

    return TaxResult(impot, surcote, decote, reduction, taux)


def _gross_tax(admin: AdminData, revenu: int, half_shares: int) -> tuple[int, float]:
    """floor(R x coeffr[i] - parts x coeffn[i]) and coeffr[i], i = the bracket of QF = R / parts."""
    brackets = admin.scaled_brackets
    # QF <= limite  <=>  2 R scale <= limite_scaled x half_shares  (all integers)
    scaled_double_revenu = 2 * revenu * brackets.scale
    index = _LAST_BRACKET
    for position, limit in enumerate(brackets.limites):
        if scaled_double_revenu <= limit * half_shares:
            index = position
            break
    numerator = 2 * revenu * brackets.coeffr[index] - half_shares * brackets.coeffn[index]
    return numerator // (2 * brackets.scale), brackets.taux[index]
