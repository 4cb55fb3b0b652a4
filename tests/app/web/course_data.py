"""The course's 11 reference taxpayers and their results (spec §2.1), for the HTTP tests."""

from __future__ import annotations

# (marié, enfants, salaire, impôt, surcôte, décôte, réduction, taux)
VECTORS = (
    ("oui", 2, 55555, 2814, 0, 0, 0, 0.14),
    ("oui", 2, 50000, 1384, 0, 384, 347, 0.14),
    ("oui", 3, 50000, 0, 0, 720, 0, 0.14),
    ("non", 2, 100000, 19884, 4480, 0, 0, 0.41),
    ("non", 3, 100000, 16782, 7176, 0, 0, 0.41),
    ("oui", 3, 100000, 9200, 2180, 0, 0, 0.3),
    ("oui", 5, 100000, 4230, 0, 0, 0, 0.14),
    ("non", 0, 100000, 22986, 0, 0, 0, 0.41),
    ("oui", 2, 30000, 0, 0, 0, 0, 0.0),
    ("non", 0, 200000, 64210, 7498, 0, 0, 0.45),
    ("oui", 3, 200000, 42842, 17283, 0, 0, 0.41),
)


def taxpayers() -> list[dict]:
    return [{"marié": m, "enfants": e, "salaire": s} for m, e, s, *_ in VECTORS]


def expected_simulations(first_id: int = 1) -> list[dict]:
    """What calculer-impots answers for the 11 taxpayers (JSON types), ids from ``first_id``."""
    return [
        {
            "marié": m,
            "enfants": e,
            "salaire": s,
            "impôt": impot,
            "surcôte": surcote,
            "taux": taux,
            "décôte": decote,
            "réduction": reduction,
            "id": first_id + rank,
        }
        for rank, (m, e, s, impot, surcote, decote, reduction, taux) in enumerate(VECTORS)
    ]
