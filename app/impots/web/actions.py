"""The catalogue of the application's actions (spec §4.2, §5.4): names, URL rules, kinds and views.

Action names, états and view names are the course's; the endpoint of an action is its name with
underscores (``init-session`` -> ``impots.init_session``).
"""

from __future__ import annotations

from dataclasses import dataclass

BLUEPRINT_NAME = "impots"

# Bootstrap routes: plain redirects, outside the main controller's checks.
ROOT = "/"
INIT_SESSION_WITHOUT_CSRFTOKEN = "init-session-without-csrftoken"

INIT_SESSION = "init-session"
AUTHENTIFIER_UTILISATEUR = "authentifier-utilisateur"
CALCULER_IMPOT = "calculer-impot"
CALCULER_IMPOTS = "calculer-impots"
LISTER_SIMULATIONS = "lister-simulations"
SUPPRIMER_SIMULATION = "supprimer-simulation"
FIN_SESSION = "fin-session"
AFFICHER_CALCUL_IMPOT = "afficher-calcul-impot"
GET_ADMINDATA = "get-admindata"
AFFICHER_VUE_AUTHENTIFICATION = "afficher-vue-authentification"
AFFICHER_VUE_CALCUL_IMPOT = "afficher-vue-calcul-impot"
AFFICHER_VUE_LISTE_SIMULATIONS = "afficher-vue-liste-simulations"
AFFICHER_VUE_LISTE_ERREURS = "afficher-vue-liste-erreurs"

RESPONSE_TYPES = ("json", "xml", "html")


@dataclass(frozen=True)
class Action:
    """One route of §4.2: ``rule`` is relative to ``prefix_url``, without the CSRF segment."""

    name: str
    rule: str
    methods: tuple[str, ...] = ("GET",)

    @property
    def endpoint(self) -> str:
        return endpoint_name(self.name)


def endpoint_name(action: str) -> str:
    """The blueprint-local endpoint of an action (``/`` is the root route ``index``)."""
    return "index" if action == ROOT else action.replace("-", "_")


# Routes 2 and 4-15 of §4.2, in the spec's order; they go through the main controller.
ACTIONS: tuple[Action, ...] = (
    Action(INIT_SESSION, "/init-session/<type_response>"),
    Action(AUTHENTIFIER_UTILISATEUR, "/authentifier-utilisateur", ("POST",)),
    Action(CALCULER_IMPOT, "/calculer-impot", ("POST",)),
    Action(CALCULER_IMPOTS, "/calculer-impots", ("POST",)),
    Action(LISTER_SIMULATIONS, "/lister-simulations"),
    Action(SUPPRIMER_SIMULATION, "/supprimer-simulation/<int:numero>"),
    Action(FIN_SESSION, "/fin-session"),
    Action(AFFICHER_CALCUL_IMPOT, "/afficher-calcul-impot"),
    Action(GET_ADMINDATA, "/get-admindata"),
    Action(AFFICHER_VUE_AUTHENTIFICATION, "/afficher-vue-authentification"),
    Action(AFFICHER_VUE_CALCUL_IMPOT, "/afficher-vue-calcul-impot"),
    Action(AFFICHER_VUE_LISTE_SIMULATIONS, "/afficher-vue-liste-simulations"),
    Action(AFFICHER_VUE_LISTE_ERREURS, "/afficher-vue-liste-erreurs"),
)

ACTION_BY_ENDPOINT = {action.endpoint: action.name for action in ACTIONS} | {
    endpoint_name(ROOT): ROOT,
    endpoint_name(INIT_SESSION_WITHOUT_CSRFTOKEN): INIT_SESSION_WITHOUT_CSRFTOKEN,
}

# Actions an unauthenticated session may run (§4.3 b).
ALLOWED_WITHOUT_USER = frozenset({INIT_SESSION, AUTHENTIFIER_UTILISATEUR, AFFICHER_VUE_AUTHENTIFICATION})


@dataclass(frozen=True)
class View:
    """An HTML view: the ASV action that shows it, its état, its template."""

    name: str
    show_action: str
    etat: int
    template: str


VIEW_AUTHENTIFICATION = View(
    "authentification", AFFICHER_VUE_AUTHENTIFICATION, 1100, "views/vue-authentification.html"
)
VIEW_CALCUL_IMPOT = View("calcul-impot", AFFICHER_VUE_CALCUL_IMPOT, 1400, "views/vue-calcul-impot.html")
VIEW_LISTE_SIMULATIONS = View(
    "liste-simulations", AFFICHER_VUE_LISTE_SIMULATIONS, 1200, "views/vue-liste-simulations.html"
)
VIEW_LISTE_ERREURS = View("liste-erreurs", AFFICHER_VUE_LISTE_ERREURS, 1300, "views/vue-erreurs.html")

VIEWS = (VIEW_AUTHENTIFICATION, VIEW_CALCUL_IMPOT, VIEW_LISTE_SIMULATIONS, VIEW_LISTE_ERREURS)
VIEW_BY_ETAT = {view.etat: view for view in VIEWS}
