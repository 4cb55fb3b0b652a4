"""Action controllers (spec §4.4): each returns ``(result, http_status)``, result = {action, état, réponse}.

They run after the main controller's checks; they read the request and the session and change only the
session (never shared state: the admin data is frozen and simulations live in the session).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import current_app, g, request, session
from passlib.hash import pbkdf2_sha256

from impots.errors import ImpotsError
from impots.tax.rules import compute_tax
from impots.web import actions as a
from impots.web import validation
from impots.web.echo import echo_object, shorten
from impots.web.runtime import current_runtime

Result = tuple[dict[str, Any], int]

MSG_JSON_XML_ONLY = "cette action n'est possible que pour les sessions json ou xml"


def result(action: str, etat: int, reponse: Any) -> dict[str, Any]:
    """The result dictionary every controller returns: ``{"action", "état", "réponse"}``."""
    return {"action": action, "état": etat, "réponse": reponse}


def _simulation(taxpayer: validation.Taxpayer, simulation_id: int) -> dict[str, Any]:
    admin_data = current_runtime().admin_data.get()
    tax = compute_tax(admin_data, taxpayer.is_married, taxpayer.enfants, taxpayer.salaire).to_dict()
    return {
        "marié": taxpayer.marie,
        "enfants": taxpayer.enfants,
        "salaire": taxpayer.salaire,
        "impôt": tax["impôt"],
        "surcôte": tax["surcôte"],
        "taux": tax["taux"],
        "décôte": tax["décôte"],
        "réduction": tax["réduction"],
        "id": simulation_id,
    }


def init_session(type_response: str) -> Result:
    """Route 2: 700 and the session's response type, or 701/400 for an unknown type."""
    if type_response not in a.RESPONSE_TYPES:
        return result(a.INIT_SESSION, 701, [f"paramètre [type={shorten(type_response)}] invalide"]), 400
    session["typeResponse"] = type_response
    # A model left by an earlier HTML session must not constrain the new one (course bug §12.6).
    session.pop("modèle", None)
    return result(a.INIT_SESSION, 700, [f"session démarrée avec le type de réponse {type_response}"]), 200


def too_many_attempts_message(wait: int) -> str:
    """État 429: too many failed logins for this login or from this address."""
    return f"trop de tentatives de connexion échouées : réessayez dans {wait} seconde(s)"


def _too_many_attempts(wait: int) -> Result:
    g.retry_after = wait  # sent as Retry-After by the main controller
    return result(a.AUTHENTIFIER_UTILISATEUR, 429, [too_many_attempts_message(wait)]), 429


def authentifier_utilisateur() -> Result:
    """Route 4: 200 for valid credentials, 201/400 for bad fields, 201/401 for bad credentials,
    429/429 while too many failed attempts for this login or address make it wait (see ``throttle``)."""
    credentials, errors = validation.credentials_from_form(request.form)
    if credentials is None:
        return result(a.AUTHENTIFIER_UTILISATEUR, 201, errors), 400
    login, password = credentials
    runtime = current_runtime()
    address = request.remote_addr or ""  # the connection's REMOTE_ADDR; X-Forwarded-For is not trusted
    wait = runtime.throttle.wait(login, address)
    if wait:
        return _too_many_attempts(wait)
    password_hash = runtime.password_hash(login)
    if password_hash is None or not pbkdf2_sha256.verify(password, password_hash):
        runtime.throttle.failed(login, address)
        # A failed attempt does not log out a user who was already authenticated.
        return result(a.AUTHENTIFIER_UTILISATEUR, 201, ["Echec de l'authentification"]), 401
    wait = runtime.throttle.succeeded(login, address)
    if wait:
        return _too_many_attempts(wait)
    _regenerate_session_id()
    session["user"] = True
    return result(a.AUTHENTIFIER_UTILISATEUR, 200, "Authentification réussie"), 200


def _regenerate_session_id() -> None:
    """New session id on login (session fixation); only server-side sessions have an id."""
    regenerate = getattr(current_app.session_interface, "regenerate", None)
    if regenerate is not None:
        regenerate(session)


def _store_simulations(new: list[dict[str, Any]]) -> None:
    # Reassign rather than mutate in place: the session only notices assignments.
    session["simulations"] = [*session.get("simulations", []), *new]
    if new:
        session["id_simulation"] = new[-1]["id"]


def calculer_impot() -> Result:
    """Route 5: 300 and the new simulation (stored in the session), or 301/400 with the messages."""
    taxpayer, errors = validation.taxpayer_from_form(request.form)
    if taxpayer is None:
        return result(a.CALCULER_IMPOT, 301, errors), 400
    simulation = _simulation(taxpayer, session.get("id_simulation", 0) + 1)
    _store_simulations([simulation])
    return result(a.CALCULER_IMPOT, 300, simulation), 200


def _bulk_body() -> tuple[list[dict[str, Any]] | None, str | None]:
    try:
        body = json.loads(request.get_data(as_text=True))
    except (ValueError, RecursionError) as error:  # RecursionError: nested deeper than the parser goes
        return None, f"le corps du POST n'est pas une chaîne jSON valide : {error}"
    if not isinstance(body, list) or not body:
        return None, validation.MSG_NOT_A_LIST
    if not all(isinstance(item, dict) for item in body):
        return None, validation.MSG_NOT_DICTS
    return body, None


def calculer_impots() -> Result:
    """Route 6 (json/xml only): 1500 and the new simulations, or 1501/400 (1501/500 if the rule fails)."""
    if session.get("typeResponse") not in ("json", "xml"):
        return result(a.CALCULER_IMPOTS, 1501, [MSG_JSON_XML_ONLY]), 400
    body, error = _bulk_body()
    if body is None:
        return result(a.CALCULER_IMPOTS, 1501, [error]), 400
    taxpayers, invalid = [], []
    for item in body:
        taxpayer, item_error = validation.taxpayer_from_json(item)
        if taxpayer is None:
            invalid.append({**echo_object(item), "erreur": item_error})
        else:
            taxpayers.append(taxpayer)
    if invalid:
        return result(a.CALCULER_IMPOTS, 1501, invalid), 400
    first_id = session.get("id_simulation", 0) + 1
    try:
        simulations = [_simulation(taxpayer, first_id + rank) for rank, taxpayer in enumerate(taxpayers)]
    except (
        ImpotsError,
        ArithmeticError,
        ValueError,
    ) as error:  # the rule failed on valid input: a server fault
        return result(a.CALCULER_IMPOTS, 1501, [str(error)]), 500
    _store_simulations(simulations)
    return result(a.CALCULER_IMPOTS, 1500, simulations), 200


def lister_simulations() -> Result:
    """Route 7: 500 and the session's simulations (possibly ``[]``)."""
    return result(a.LISTER_SIMULATIONS, 500, session.get("simulations", [])), 200


def supprimer_simulation(numero: int) -> Result:
    """Route 8: 600 and the remaining simulations, or 601/400 when ``numero`` is not one of them."""
    simulations = session.get("simulations", [])
    remaining = [simulation for simulation in simulations if simulation["id"] != numero]
    if len(remaining) == len(simulations):
        return result(
            a.SUPPRIMER_SIMULATION, 601, [f"la simulation n° [{shorten(numero)}] n'existe pas"]
        ), 400
    session["simulations"] = remaining
    return result(a.SUPPRIMER_SIMULATION, 600, remaining), 200


def fin_session() -> Result:
    """Route 9: 400; the whole session is cleared (type, user, simulations, model, CSRF token)."""
    session.clear()
    # Flask-WTF caches the request's token in g; it belonged to the session just cleared.
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
    return result(a.FIN_SESSION, 400, "session réinitialisée"), 200


def afficher_calcul_impot() -> Result:
    """Route 10: 800, the menu link back to an empty tax form."""
    return result(a.AFFICHER_CALCUL_IMPOT, 800, ""), 200


def get_admindata() -> Result:
    """Route 11 (json/xml only): 1000 and the admin data, or 1001/400."""
    if session.get("typeResponse") not in ("json", "xml"):
        return result(a.GET_ADMINDATA, 1001, [MSG_JSON_XML_ONLY]), 400
    return result(a.GET_ADMINDATA, 1000, current_runtime().admin_data.get().to_dict()), 200


def _show_view(view: a.View) -> Callable[[], Result]:
    def show() -> Result:
        return result(view.show_action, view.etat, ""), 200

    return show


CONTROLLERS: dict[str, Callable[..., Result]] = {
    a.INIT_SESSION: init_session,
    a.AUTHENTIFIER_UTILISATEUR: authentifier_utilisateur,
    a.CALCULER_IMPOT: calculer_impot,
    a.CALCULER_IMPOTS: calculer_impots,
    a.LISTER_SIMULATIONS: lister_simulations,
    a.SUPPRIMER_SIMULATION: supprimer_simulation,
    a.FIN_SESSION: fin_session,
    a.AFFICHER_CALCUL_IMPOT: afficher_calcul_impot,
    a.GET_ADMINDATA: get_admindata,
    **{view.show_action: _show_view(view) for view in a.VIEWS},
}
