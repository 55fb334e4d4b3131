"""Who links to whom in a session (``Roles.linked``): the rule the node's launcher follows."""

from __future__ import annotations

from tessera.jobs.model import Preprocessing, Recipients, Roles


def roles(dealer: bool = False) -> Roles:
    return Roles(data_owners=["h1", "c2", "h2"], compute=["c1", "c2", "c3"],
                 preprocessing=Preprocessing(source="dealer", party="d") if dealer else Preprocessing(source="none"),
                 recipients=Recipients(parties=["c1"]))


def test_an_input_only_owner_links_to_the_compute_parties_and_in_a_vertical_job_to_the_other_owners():
    r = roles()
    assert r.input_only == ["h1", "h2"]
    assert r.linked("h1") == ["c1", "c2", "c3", "h1"]
    assert r.linked("h2") == ["c1", "c2", "c3", "h2"]
    assert r.linked("h1", vertical=True) == r.linked("h2", vertical=True) == ["c1", "c2", "c3", "h1", "h2"]


def test_a_compute_party_links_to_every_participant_and_the_dealer_to_the_endpoints_only():
    r = roles(dealer=True)
    assert r.linked("c2") == ["c1", "c2", "c3", "d", "h1", "h2"]
    assert r.linked("d") == ["c1", "c2", "c3", "d"]
