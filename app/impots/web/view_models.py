"""View models of the HTML views (spec §6), stored in the session under ``modèle``.

A model holds data only (no HTML, no URL): templates escape every value and build every URL with
``url_for`` at render time, so a model stays valid under any mount point and with any CSRF token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from impots.web import actions as a
from impots.web.echo import shorten

MENU_CALCUL_IMPOT = {"text": "Calcul de l'impôt", "action": a.AFFICHER_CALCUL_IMPOT}
MENU_LISTE_SIMULATIONS = {"text": "Liste des simulations", "action": a.LISTER_SIMULATIONS}
MENU_FIN_SESSION = {"text": "Fin de session", "action": a.FIN_SESSION}


def _model(view: a.View, actions_possibles: list[str], **data: Any) -> dict[str, Any]:
    return {"vue": view.name, "actions_possibles": actions_possibles, **data}


def _messages(reponse: Any) -> list[str]:
    """The réponse of a failed action as a list of texts (it is a list, a string or a list of objects)."""
    items = reponse if isinstance(reponse, list) else [reponse]
    return [str(item) for item in items]


def authentication_model(result: Mapping[str, Any], form: Mapping[str, str]) -> dict[str, Any]:
    """État 700: empty form; état 201: the posted login back, with the errors."""
    failed = result["état"] == 201
    return _model(
        a.VIEW_AUTHENTIFICATION,
        [a.AFFICHER_VUE_AUTHENTIFICATION, a.AUTHENTIFIER_UTILISATEUR],
        login=shorten(form.get("user", "")) if failed else "",
        error=failed,
        erreurs=_messages(result["réponse"]) if failed else [],
    )


def _taux_percent(taux: float) -> str:
    return f"{round(taux * 100, 2):g}"


def tax_form_model(result: Mapping[str, Any], form: Mapping[str, str]) -> dict[str, Any]:
    """États 200/800: empty form; 300: the result and the form as posted; 301: the errors and the form."""
    etat = result["état"]
    refill = etat in (300, 301)
    model = _model(
        a.VIEW_CALCUL_IMPOT,
        [a.AFFICHER_VUE_CALCUL_IMPOT, a.CALCULER_IMPOT, a.LISTER_SIMULATIONS, a.FIN_SESSION],
        marié=(shorten(form.get("marié", "").strip().lower()) if refill else "") or "non",
        enfants=shorten(form.get("enfants", "")) if refill else "",
        salaire=shorten(form.get("salaire", "")) if refill else "",
        success=etat == 300,
        error=etat == 301,
        erreurs=_messages(result["réponse"]) if etat == 301 else [],
        optionsMenu=[MENU_LISTE_SIMULATIONS, MENU_FIN_SESSION],
    )
    if etat == 300:
        simulation = result["réponse"]
        model["résultat"] = {
            "impôt": simulation["impôt"],
            "décôte": simulation["décôte"],
            "réduction": simulation["réduction"],
            "surcôte": simulation["surcôte"],
            "taux": _taux_percent(simulation["taux"]),
        }
    return model


def simulations_model(result: Mapping[str, Any], form: Mapping[str, str]) -> dict[str, Any]:
    """États 500/600: the list the action returned; deleting is offered only when the list is not empty."""
    simulations = list(result["réponse"])
    actions_possibles = [a.AFFICHER_VUE_LISTE_SIMULATIONS, a.AFFICHER_CALCUL_IMPOT, a.FIN_SESSION]
    if simulations:
        actions_possibles.append(a.SUPPRIMER_SIMULATION)
    return _model(
        a.VIEW_LISTE_SIMULATIONS,
        actions_possibles,
        simulations=simulations,
        optionsMenu=[MENU_CALCUL_IMPOT, MENU_FIN_SESSION],
    )


def errors_model(result: Mapping[str, Any], form: Mapping[str, str]) -> dict[str, Any]:
    """Any other état: the messages of the result."""
    return _model(
        a.VIEW_LISTE_ERREURS,
        [a.AFFICHER_VUE_LISTE_ERREURS, a.AFFICHER_CALCUL_IMPOT, a.LISTER_SIMULATIONS, a.FIN_SESSION],
        erreurs=_messages(result["réponse"]),
        optionsMenu=[MENU_CALCUL_IMPOT, MENU_LISTE_SIMULATIONS, MENU_FIN_SESSION],
    )


def unavailable_model(result: Mapping[str, Any]) -> dict[str, Any]:
    """The 503 page: the message only; never stored in the session, no menu (nothing works until recovery)."""
    return _model(a.VIEW_LISTE_ERREURS, [], erreurs=_messages(result["réponse"]), optionsMenu=[])
