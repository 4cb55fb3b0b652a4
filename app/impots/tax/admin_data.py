"""The "admin data" of the tax rule (spec §1.2): bracket table and the ten scalar constants.

Values are kept exact: brackets as :class:`~decimal.Decimal` (the database columns are DECIMAL/NUMERIC,
and a float is converted through its shortest repr, so ``0.14`` is exactly 14/100), constants as ``int``
(French rules state them in whole euros; a fractional constant is refused so that every output of the
rule stays a whole number of euros). The object is frozen and never mutated (the course's sentinel trick,
spec §1.7, is a data race), so one instance is safely shared by every thread of a server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

BRACKET_COUNT = 5

CONSTANT_NAMES = (
    "plafond_qf_demi_part",
    "plafond_revenus_celibataire_pour_reduction",
    "plafond_revenus_couple_pour_reduction",
    "valeur_reduc_demi_part",
    "plafond_decote_celibataire",
    "plafond_decote_couple",
    "plafond_impot_celibataire_pour_decote",
    "plafond_impot_couple_pour_decote",
    "abattement_dixpourcent_max",
    "abattement_dixpourcent_min",
)


class ScaledBrackets(NamedTuple):
    """The bracket table as integers multiplied by ``scale`` (a power of ten), for fast exact arithmetic."""

    scale: int
    limites: tuple[int, ...]
    coeffr: tuple[int, ...]
    coeffn: tuple[int, ...]
    taux: tuple[float, ...]


def _exact(value: Any, name: str) -> Decimal:
    """``value`` as an exact finite Decimal; floats go through their shortest repr (0.14 -> 0.14)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ValueError(f"admin data: {name}: expected a number, got {value!r}")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except ArithmeticError:
        raise ValueError(f"admin data: {name}: expected a number, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"admin data: {name}: expected a finite number, got {value!r}")
    return number


def _bracket_column(values: Sequence[Any], name: str) -> tuple[Decimal, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ValueError(f"admin data: {name}: expected a list of {BRACKET_COUNT} numbers, got {values!r}")
    if len(values) != BRACKET_COUNT:
        raise ValueError(f"admin data: {name}: expected {BRACKET_COUNT} values, got {len(values)}")
    return tuple(_exact(value, f"{name}[{index}]") for index, value in enumerate(values))


def _whole_euros(value: Any, name: str) -> int:
    number = _exact(value, name)
    if number != number.to_integral_value() or number < 0:
        raise ValueError(f"admin data: {name}: expected a whole number of euros >= 0, got {value!r}")
    return int(number)


def _decimal_places(number: Decimal) -> int:
    return max(0, -number.normalize().as_tuple().exponent)


@dataclasses.dataclass(frozen=True)
class AdminData:
    """Bracket table (``limites``, ``coeffr``, ``coeffn``: 5 values each) and the ten constants of §1.2.

    ``limites[4]`` is the course's "no upper bound" sentinel: it is never read by the rule (the last
    bracket is open), so any number is accepted there; the course data has 0.
    Invalid data raises ``ValueError`` naming the field.
    """

    limites: tuple[Decimal, ...]
    coeffr: tuple[Decimal, ...]
    coeffn: tuple[Decimal, ...]
    plafond_qf_demi_part: int
    plafond_revenus_celibataire_pour_reduction: int
    plafond_revenus_couple_pour_reduction: int
    valeur_reduc_demi_part: int
    plafond_decote_celibataire: int
    plafond_decote_couple: int
    plafond_impot_celibataire_pour_decote: int
    plafond_impot_couple_pour_decote: int
    abattement_dixpourcent_max: int
    abattement_dixpourcent_min: int
    # Derived from the fields above, for compute_tax; not part of equality or repr.
    scaled_brackets: ScaledBrackets = dataclasses.field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        normalized: dict[str, Any] = {
            name: _bracket_column(getattr(self, name), name) for name in ("limites", "coeffr", "coeffn")
        }
        normalized.update({name: _whole_euros(getattr(self, name), name) for name in CONSTANT_NAMES})
        limites, coeffr, coeffn = normalized["limites"], normalized["coeffr"], normalized["coeffn"]
        finite_limits = limites[: BRACKET_COUNT - 1]
        if any(low >= high for low, high in zip(finite_limits, finite_limits[1:], strict=False)):
            raise ValueError(f"admin data: limites: the first four limits must increase, got {limites}")
        for index, rate in enumerate(coeffr):
            if not 0 <= rate <= 1:
                raise ValueError(f"admin data: coeffr[{index}]: expected a rate between 0 and 1, got {rate}")
        if normalized["abattement_dixpourcent_min"] > normalized["abattement_dixpourcent_max"]:
            raise ValueError(
                "admin data: abattement_dixpourcent_min: greater than abattement_dixpourcent_max"
            )
        for name, value in normalized.items():
            object.__setattr__(self, name, value)

        places = max(_decimal_places(number) for number in (*finite_limits, *coeffr, *coeffn))
        scale = 10**places
        scaled = ScaledBrackets(
            scale=scale,
            limites=tuple(int(limit * scale) for limit in finite_limits),
            coeffr=tuple(int(rate * scale) for rate in coeffr),
            coeffn=tuple(int(amount * scale) for amount in coeffn),
            taux=tuple(float(rate) for rate in coeffr),
        )
        object.__setattr__(self, "scaled_brackets", scaled)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AdminData:
        """Build from a mapping with the spec's keys (``to_dict()``, the course's JSON); ``id`` is ignored."""
        names = ("limites", "coeffr", "coeffn", *CONSTANT_NAMES)
        missing = [name for name in names if name not in data]
        if missing:
            raise ValueError(f"admin data: missing keys: {', '.join(missing)}")
        return cls(**{name: data[name] for name in names})

    def to_dict(self) -> dict[str, Any]:
        """The ``get-admindata`` réponse: the three bracket lists and the ten constants, as floats."""
        result: dict[str, Any] = {
            name: [float(value) for value in getattr(self, name)] for name in ("limites", "coeffr", "coeffn")
        }
        result.update({name: float(getattr(self, name)) for name in CONSTANT_NAMES})
        return result


# The course values (spec §1.2 and §3.3), as exact decimals.
COURSE_ADMIN_DATA = AdminData(
    limites=(Decimal("9964"), Decimal("27519"), Decimal("73779"), Decimal("156244"), Decimal("0")),
    coeffr=(Decimal("0"), Decimal("0.14"), Decimal("0.3"), Decimal("0.41"), Decimal("0.45")),
    coeffn=(Decimal("0"), Decimal("1394.96"), Decimal("5798"), Decimal("13913.69"), Decimal("20163.45")),
    plafond_qf_demi_part=1551,
    plafond_revenus_celibataire_pour_reduction=21037,
    plafond_revenus_couple_pour_reduction=42074,
    valeur_reduc_demi_part=3797,
    plafond_decote_celibataire=1196,
    plafond_decote_couple=1970,
    plafond_impot_celibataire_pour_decote=1595,
    plafond_impot_couple_pour_decote=2627,
    abattement_dixpourcent_max=12502,
    abattement_dixpourcent_min=437,
)
