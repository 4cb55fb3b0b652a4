"""The main controller (spec §4.3): checks, dispatch, logging, alert mail, response in the session's format.

``guard_request`` runs before every route of the blueprint (logging, debug pause, 413 for a body over
``max_request_bytes``, 503 while Redis or the database is unavailable); ``run_action`` runs the checks of
§4.3 and the action's controller.

États added to the spec's catalogue, each equal to its HTTP status and answered in the session's format
(in HTML as a page, not a redirect, so that the status reaches the client): 413 request body too large,
429 too many failed logins (with ``Retry-After``), 503 database or session store unavailable.
"""

from __future__ import annotations

import random
import time
from typing import Any

from flask import Response, current_app, g, request, session
from flask_wtf.csrf import ValidationError, validate_csrf
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from impots.web import actions as a
from impots.web.admin_data_source import AdminDataUnavailable
from impots.web.controllers import CONTROLLERS, Result, result
from impots.web.echo import MAX_LOG_LINE_CHARS, shorten
from impots.web.responses import build_response, direct_response
from impots.web.runtime import current_runtime, request_log
from impots.web.sessions import session_store_error

ETAT_TOO_LARGE = 413
ETAT_UNAVAILABLE = 503
# États answered with their own HTTP status, never through the HTML redirect (see direct_response).
DIRECT_STATUSES = frozenset({413, 429, 503})
MSG_NO_SESSION = "pas de session en cours. Commencer par action [init-session]"


def _unavailable_message(what: str) -> str:
    return (
        f"le service de calcul de l'impôt est momentanément indisponible : {what}. Réessayez dans un instant."
    )


def current_action() -> str:
    """The course's name of the action this request routes to (``init-session``...)."""
    endpoint = (request.endpoint or "").rpartition(".")[2]
    return a.ACTION_BY_ENDPOINT.get(endpoint, endpoint)


def _guess_response_type() -> str:
    """The format of a client whose session cannot be read: the type in the URL, else its Accept header."""
    asked = (request.view_args or {}).get("type_response")
    if asked in a.RESPONSE_TYPES:
        return asked
    best = request.accept_mimetypes.best_match(["application/json", "application/xml", "text/html"])
    return {"application/xml": "xml", "text/html": "html"}.get(best, "json")


def _finish(action_result: dict[str, Any], status: int, type_response: str) -> Response:
    line = shorten(f"[MainController] {action_result}", MAX_LOG_LINE_CHARS)
    log = request_log()
    log.write(line + "\n")
    if status >= 500 and status != 503:
        current_runtime().mail_admin(line, log)
    if status not in DIRECT_STATUSES:
        return build_response(type_response, action_result, status)
    response = direct_response(type_response, action_result, status)
    if "retry_after" in g:
        response.headers["Retry-After"] = str(g.retry_after)
    return response


def _too_large_message() -> str:
    limit = current_runtime().config["max_request_bytes"]
    return f"le corps de la requête dépasse la taille maximale autorisée [{limit} octets]"


def on_request_too_large(_error: RequestEntityTooLarge) -> Response:
    """A body over ``max_request_bytes`` (declared, or found while reading): 413 in the session's format."""
    type_response = session.get("typeResponse") or _guess_response_type()
    return _finish(result(current_action(), ETAT_TOO_LARGE, [_too_large_message()]), 413, type_response)


def _read_body_within_limit() -> None:
    """Read the body now, so that one over the limit is refused before any check or action runs.

    Werkzeug refuses a declared Content-Length over ``MAX_CONTENT_LENGTH`` at once; a chunked body (no
    length) is read up to the limit only, so reaching the limit means it was cut: refused too. Both raise
    RequestEntityTooLarge, answered by ``on_request_too_large``. The body stays cached for ``request.form``.
    """
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if request.content_length is not None or chunked:  # a GET without body is never waited for
        body = request.get_data(cache=True)
        if chunked and len(body) >= current_runtime().config["max_request_bytes"]:
            raise RequestEntityTooLarge()


def guard_request() -> Response | None:
    """Before any route: log the request, pause if configured, answer 503 while a backing service is down."""
    runtime = current_runtime()
    log = request_log()
    log.write(f"[MainController] requête : <Request '{shorten(request.url)}' [{request.method}]>\n")
    sleep_time = runtime.config["sleep_time"]
    if sleep_time and random.random() < 0.5:  # the course's debug pause, on about half the requests
        log.write(f"[MainController] pause de {sleep_time} seconde(s)\n")
        time.sleep(sleep_time)
    _read_body_within_limit()
    action = current_action()
    store_error = session_store_error(session)
    if store_error is not None:
        log.write(f"[serveur] Le serveur Redis n'est pas disponible : {store_error}\n")
        message = _unavailable_message("le serveur de sessions ne répond pas")
        return _finish(result(action, ETAT_UNAVAILABLE, [message]), 503, _guess_response_type())
    try:
        runtime.admin_data.get()
    except AdminDataUnavailable:
        message = _unavailable_message(f"la base de données [{runtime.dbms}] n'est pas accessible")
        type_response = session.get("typeResponse") or _guess_response_type()
        return _finish(result(action, ETAT_UNAVAILABLE, [message]), 503, type_response)
    return None


def _check(action: str, csrf_token: str | None) -> Result | None:
    """The checks of §4.3 step 3, in order; None when the action may run."""
    if action == a.AFFICHER_VUE_LISTE_ERREURS:  # never refused, or error pages would loop
        return None
    failure = None
    if "typeResponse" not in session and action != a.INIT_SESSION:
        failure = result(action, 101, [MSG_NO_SESSION])
    if not session.get("user") and action not in a.ALLOWED_WITHOUT_USER:
        failure = result(action, 101, [f"action [{action}] demandée par utilisateur non authentifié"])
    if failure is None and action != a.INIT_SESSION:
        allowed = (session.get("modèle") or {}).get("actions_possibles")
        if allowed and action not in allowed:
            failure = result(action, 151, [f"action [{action}] incorrecte dans l'environnement actuel"])
    if failure is None and current_runtime().with_csrftoken:
        try:
            validate_csrf(csrf_token)
        except ValidationError as error:
            failure = result(action, 121, [str(error.args[0])])
    return None if failure is None else (failure, 400)


def run_action(**route_args: Any) -> Response:
    """The view function of every action route."""
    action = current_action()
    csrf_token = route_args.pop("csrf_token", None)
    type_before = session.get("typeResponse")
    had_session = bool(session)
    try:
        action_result, status = _check(action, csrf_token) or CONTROLLERS[action](**route_args)
    except HTTPException:
        raise  # e.g. 413 while reading a form: answered by its error handler, not as an unexpected error
    except Exception as error:  # §4.3 step 5: état 131, the server keeps serving
        current_app.logger.exception("action [%s] failed", action)
        action_result, status = result(action, 131, [str(error)]), 400
    # A token lives in the session: handing one to a client with no session and nothing to keep would store
    # a session per anonymous request. Such a client starts with init-session-without-csrftoken anyway.
    if current_runtime().with_csrftoken and (had_session or session):
        action_result["csrf_token"] = current_runtime().csrf_token()
    # fin-session answers in the format of the session it ended.
    return _finish(action_result, status, session.get("typeResponse") or type_before or "json")


def on_session_save_error(response: Response, error: str) -> None:
    """Redis failed while saving the session: what the action did is lost, so the answer becomes a 503."""
    request_log().write(f"[serveur] Le serveur Redis n'est pas disponible : {error}\n")
    message = _unavailable_message("le serveur de sessions ne répond pas")
    replacement = direct_response(
        session.get("typeResponse") or _guess_response_type(),
        result(current_action(), ETAT_UNAVAILABLE, [message]),
        503,
    )
    response.status_code = 503
    response.headers.clear()
    response.headers.extend(replacement.headers)
    response.set_data(replacement.get_data())
