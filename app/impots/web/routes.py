"""The blueprint: the 15 routes of spec §4.2 under ``prefix_url``, with or without the CSRF segment."""

from __future__ import annotations

from flask import Blueprint, Response, redirect

from impots.web import actions as a
from impots.web.front_controller import guard_request, run_action
from impots.web.urls import action_url


def index() -> Response:
    """Route 1: the entry point of HTML users."""
    return redirect(action_url(a.INIT_SESSION, type_response="html"), 302)


def init_session_without_csrftoken(type_response: str) -> Response:
    """Route 3: JSON/XML clients cannot know a token before their first request; this gives them one."""
    return redirect(action_url(a.INIT_SESSION, type_response=type_response), 302)


def make_blueprint(with_csrftoken: bool) -> Blueprint:
    """Every route of §4.2; with CSRF on, each action rule ends with ``/<csrf_token>``."""
    blueprint = Blueprint(a.BLUEPRINT_NAME, __name__)
    blueprint.before_request(guard_request)
    blueprint.add_url_rule("/", endpoint=a.endpoint_name(a.ROOT), view_func=index)
    if with_csrftoken:
        blueprint.add_url_rule(
            f"/{a.INIT_SESSION_WITHOUT_CSRFTOKEN}/<type_response>",
            endpoint=a.endpoint_name(a.INIT_SESSION_WITHOUT_CSRFTOKEN),
            view_func=init_session_without_csrftoken,
        )
    suffix = "/<csrf_token>" if with_csrftoken else ""
    for action in a.ACTIONS:
        blueprint.add_url_rule(
            action.rule + suffix, endpoint=action.endpoint, view_func=run_action, methods=list(action.methods)
        )
    return blueprint
