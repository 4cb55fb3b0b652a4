"""The three response builders (spec §4.5): JSON, XML (root ``root``) and HTML (Post/Redirect/Get).

In HTML, an ASV état renders its view from the model kept in the session; any other état stores the model
of the view to show next and redirects there (302), so the address bar only ever shows ``afficher-vue-*``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import xmltodict
from flask import Response, redirect, render_template, request, session

from impots.web import actions as a
from impots.web import view_models
from impots.web.urls import action_url

ModelBuilder = Callable[[Mapping[str, Any], Mapping[str, str]], dict[str, Any]]


@dataclass(frozen=True)
class RedirectRule:
    """Where an ADS état leads in HTML, and the model of that view (None: the target is an ADS)."""

    target: str
    model: ModelBuilder | None
    params: Mapping[str, Any] = field(default_factory=dict)


_TO_AUTHENTIFICATION = RedirectRule(a.AFFICHER_VUE_AUTHENTIFICATION, view_models.authentication_model)
_TO_CALCUL_IMPOT = RedirectRule(a.AFFICHER_VUE_CALCUL_IMPOT, view_models.tax_form_model)
_TO_LISTE_SIMULATIONS = RedirectRule(a.AFFICHER_VUE_LISTE_SIMULATIONS, view_models.simulations_model)
_TO_LISTE_ERREURS = RedirectRule(a.AFFICHER_VUE_LISTE_ERREURS, view_models.errors_model)

REDIRECT_RULES: dict[int, RedirectRule] = {
    400: RedirectRule(a.INIT_SESSION, None, {"type_response": "html"}),
    700: _TO_AUTHENTIFICATION,
    201: _TO_AUTHENTIFICATION,
    200: _TO_CALCUL_IMPOT,
    300: _TO_CALCUL_IMPOT,
    301: _TO_CALCUL_IMPOT,
    800: _TO_CALCUL_IMPOT,
    500: _TO_LISTE_SIMULATIONS,
    600: _TO_LISTE_SIMULATIONS,
}

# Neutral results used when an ASV finds no model of its own view in the session.
_NEUTRAL_MODELS: dict[str, Callable[[], dict[str, Any]]] = {
    a.VIEW_AUTHENTIFICATION.name: lambda: view_models.authentication_model({"état": 700}, {}),
    a.VIEW_CALCUL_IMPOT.name: lambda: view_models.tax_form_model({"état": 800}, {}),
    a.VIEW_LISTE_SIMULATIONS.name: lambda: view_models.simulations_model(
        {"réponse": session.get("simulations", [])}, {}
    ),
    a.VIEW_LISTE_ERREURS.name: lambda: view_models.errors_model({"réponse": []}, {}),
}


def json_response(result: Mapping[str, Any], status: int) -> Response:
    """The result as UTF-8 JSON, accents kept."""
    body = json.dumps(result, ensure_ascii=False)
    return Response(body, status=status, content_type="application/json; charset=utf-8")


# Element names every XML parser accepts: ASCII and Latin-1 letters (the course's keys: état, impôt...),
# digits, "_", "-", "."; no ":" (namespaces), nor xmltodict's "@attribute" / "#text" markers.
_XML_NAME = re.compile(r"[A-Za-z_\xc0-\xd6\xd8-\xf6\xf8-\xff][A-Za-z_\xc0-\xd6\xd8-\xf6\xf8-\xff0-9.-]*")
# Characters XML 1.0 cannot carry, even escaped.
_NOT_XML_CHARACTER = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_safe(value: Any) -> Any:
    """``value`` made serialisable as XML: the keys of an invalid object come from the client, and a form
    field may hold any character. Keys that cannot be element names are left out (``erreur`` names them)."""
    if isinstance(value, Mapping):
        return {key: _xml_safe(item) for key, item in value.items() if _XML_NAME.fullmatch(str(key))}
    if isinstance(value, list):
        return [_xml_safe(item) for item in value]
    if isinstance(value, str):
        return _NOT_XML_CHARACTER.sub("\ufffd", value)
    return value


def xml_response(result: Mapping[str, Any], status: int) -> Response:
    """The result inside ``<root>``: lists as repeated elements, every value as text."""
    # An empty list would vanish in XML; an empty <réponse/> keeps the key visible to clients.
    document = {key: ("" if value == [] else value) for key, value in result.items()}
    body = xmltodict.unparse({"root": _xml_safe(document)}, encoding="utf-8")
    return Response(body, status=status, content_type="application/xml; charset=utf-8")


def render_view(view: a.View, model: Mapping[str, Any], status: int) -> Response:
    """An HTML view rendered from ``model``."""
    body = render_template(view.template, model=model)
    return Response(body, status=status, content_type="text/html; charset=utf-8")


def html_response(result: Mapping[str, Any], status: int) -> Response:
    """An ASV état renders its view; any other état stores the next view's model and redirects (302)."""
    view = a.VIEW_BY_ETAT.get(result["état"])
    if view is not None:
        model = session.get("modèle")
        if not model or model.get("vue") != view.name:
            model = _NEUTRAL_MODELS[view.name]()
        return render_view(view, model, status)
    rule = REDIRECT_RULES.get(result["état"], _TO_LISTE_ERREURS)
    if rule.model is not None:
        session["modèle"] = rule.model(result, request.form)
    return redirect(action_url(rule.target, **rule.params), 302)


def build_response(type_response: str, result: Mapping[str, Any], status: int) -> Response:
    """The response of an action in the session's format."""
    if type_response == "xml":
        return xml_response(result, status)
    if type_response == "html":
        return html_response(result, status)
    return json_response(result, status)


def direct_response(type_response: str, result: Mapping[str, Any], status: int) -> Response:
    """An answer whose HTTP status matters (413, 429, 503) in the given format. In HTML the page is shown
    directly, since a redirect would lose the status: the login form with the message for a throttled
    login (429), else the error page without a menu (nothing stored in the session)."""
    if type_response != "html":
        return build_response(type_response, result, status)
    if status == 429:
        failed = {"état": 201, "réponse": result["réponse"]}
        return render_view(
            a.VIEW_AUTHENTIFICATION, view_models.authentication_model(failed, request.form), 429
        )
    return render_view(a.VIEW_LISTE_ERREURS, view_models.unavailable_model(result), status)
