"""Strict validation of what clients post (spec §4.4, course bug §12.3 fixed).

Every function returns the clean values or the list of French messages the spec gives, so the
controllers never see a half-valid taxpayer (``12x``, ``-1``, ``1.5``, an empty field, a missing
``marié`` or an extra field are all refused here, never later as an unexpected error).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import MultiDict

from impots.web.echo import shorten

TAXPAYER_FIELDS = ("marié", "enfants", "salaire")
CREDENTIAL_FIELDS = ("user", "password")

# Integers must stay exact in JSON clients (2**53) and fit the session serialiser (msgpack: 64 bits).
MAX_INTEGER = 2**53 - 1
_DIGITS = re.compile(r"[0-9]+")
_MAX_DIGITS = 20  # leading zeros allowed; anything longer is beyond MAX_INTEGER anyway

MSG_TAXPAYER_FORM = "méthode POST requise avec les paramètres postés [marié, enfants, salaire]"
MSG_CREDENTIALS_FORM = (
    "méthode POST requise, paramètre [action] dans l'URL, paramètres postés [user, password]"
)
MSG_TAXPAYER_KEYS = "le dictionnaire doit inclure les clés [marié, enfants, salaire]"
MSG_NOT_A_LIST = "le corps du POST n'est pas une liste ou alors cette liste est vide"
MSG_NOT_DICTS = "le corps du POST doit être une liste de dictionnaires"


@dataclass(frozen=True)
class Taxpayer:
    """A validated taxpayer: ``marie`` is ``"oui"`` or ``"non"``."""

    marie: str
    enfants: int
    salaire: int

    @property
    def is_married(self) -> bool:
        return self.marie == "oui"


def missing_message(name: str) -> str:
    """The message of a missing field: ``paramètre [<name>] manquant``."""
    return f"paramètre [{name}] manquant"


def invalid_marie_message(value: Any) -> str:
    """The message of a ``marié`` that is not oui/non."""
    return f"valeur [{shorten(value)}] invalide pour le paramètre [marié (oui/non)]"


def invalid_integer_message(name: str, value: Any) -> str:
    """The message of an ``enfants`` or ``salaire`` that is not a whole number >= 0."""
    return f"valeur [{shorten(value)}] invalide pour le paramètre [{name} (entier>=0)]"


def _marie(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    normalized = value.strip().lower()
    return normalized if normalized in ("oui", "non") else None


def _natural(value: Any) -> int | None:
    """A whole number >= 0 given as digits (form or JSON string) or as a JSON integer."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()) and len(value.strip()) <= _MAX_DIGITS:
        number = int(value.strip())  # bounded length: int() of a huge digit string is slow, then refused
    else:
        return None
    return number if 0 <= number <= MAX_INTEGER else None


def _taxpayer_from_values(values: Mapping[str, Any]) -> tuple[Taxpayer | None, list[str]]:
    """Check the fields present in ``values``; a Taxpayer only when all three are there and valid."""
    errors = []
    marie = _marie(values["marié"]) if "marié" in values else None
    if "marié" in values and marie is None:
        errors.append(invalid_marie_message(values["marié"]))
    numbers = {}
    for name in ("enfants", "salaire"):
        if name in values:
            numbers[name] = _natural(values[name])
            if numbers[name] is None:
                errors.append(invalid_integer_message(name, values[name]))
    if errors or len(values) != len(TAXPAYER_FIELDS):
        return None, errors
    return Taxpayer(marie, numbers["enfants"], numbers["salaire"]), []


def _single_values(form: MultiDict, names: tuple[str, ...]) -> tuple[dict[str, str], list[str]] | None:
    """(values present, "manquant" messages) if the form has as many single-valued fields as ``names``."""
    if len(form) != len(names) or any(len(form.getlist(key)) != 1 for key in form):
        return None
    missing = [missing_message(name) for name in names if name not in form]
    return {name: form[name] for name in names if name in form}, missing


def taxpayer_from_form(form: MultiDict) -> tuple[Taxpayer | None, list[str]]:
    """``calculer-impot``: exactly the fields ``marié``, ``enfants``, ``salaire``, each valid."""
    values = _single_values(form, TAXPAYER_FIELDS)
    if values is None:
        return None, [MSG_TAXPAYER_FORM]
    present, missing = values
    taxpayer, errors = _taxpayer_from_values(present)
    return taxpayer, missing + errors


def credentials_from_form(form: MultiDict) -> tuple[tuple[str, str] | None, list[str]]:
    """``authentifier-utilisateur``: exactly the fields ``user`` and ``password``."""
    values = _single_values(form, CREDENTIAL_FIELDS)
    if values is None:
        return None, [MSG_CREDENTIALS_FORM]
    present, errors = values
    if errors:
        return None, errors
    return (present["user"], present["password"]), []


def taxpayer_from_json(item: Mapping[str, Any]) -> tuple[Taxpayer | None, str | None]:
    """One object of the ``calculer-impots`` body: only the three keys, each valid; else the error text."""
    extra = [key for key in item if key not in TAXPAYER_FIELDS]
    if extra:
        return None, f"clés non autorisées : [{shorten(', '.join(map(str, extra)))}]. {MSG_TAXPAYER_KEYS}"
    if any(name not in item for name in TAXPAYER_FIELDS):
        return None, MSG_TAXPAYER_KEYS
    taxpayer, errors = _taxpayer_from_values(item)
    return taxpayer, ("; ".join(errors) if errors else None)
