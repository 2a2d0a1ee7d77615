"""The directory's pure decisions: SCIM filters and PATCH, the SCIM-to-HR mapping, consent
and withdrawal times, quiet hours, targeting by groups and preferences, tombstones."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest

from services.distribution import domain, scim
from services.distribution.scim import ScimError
from shared.events import Audience

MEMBER = domain.Member(ambassador_id="a1", subsidiary="FR01", department="Sales", site="Lyon",
                       country="FR", language="fr-FR", groups=frozenset({"cyber"}))
PATCH = {"schemas": [scim.PATCH_OP]}


def test_filter_grammar_precedence_and_value_paths() -> None:
    parsed = domain.parse_filter('userName eq "a" or title pr and not (emails[type eq "work"])')
    assert parsed == domain.Or(
        domain.Compare(domain.AttrPath("userName"), "eq", "a"),
        domain.And(domain.Present(domain.AttrPath("title")),
                   domain.Not(domain.ValuePath(domain.AttrPath("emails"),
                                               domain.Compare(domain.AttrPath("type"), "eq", "work")))))
    urn = domain.parse_filter(f"{scim.ENTERPRISE}:manager.value eq 12")
    assert urn == domain.Compare(domain.AttrPath("manager", "value", scim.ENTERPRISE), "eq", 12)
    assert domain.parse_filter('active eq TRUE and x eq null') == domain.And(
        domain.Compare(domain.AttrPath("active"), "eq", True), domain.Compare(domain.AttrPath("x"), "eq", None))
    assert domain.parse_filter('userName eq "say \\"hi\\""') == domain.Compare(
        domain.AttrPath("userName"), "eq", 'say "hi"')


@pytest.mark.parametrize("bad", ['userName eq', 'userName foo "x"', '(userName pr', 'userName eq bare',
                                 'emails[type eq "w"', '"x" eq userName', 'a pr b pr', ''])
def test_malformed_filters_are_refused(bad: str) -> None:
    with pytest.raises(domain.InvalidFilter):
        domain.parse_filter(bad)


def test_filters_evaluate_case_insensitively() -> None:
    element = {"type": "Work", "value": "Ada@Example.com", "primary": True}
    assert domain.matches(domain.parse_filter('type eq "work" and value sw "ada" and value ew ".COM"'), element)
    assert domain.matches(domain.parse_filter('value co "example" and primary eq true'), element)
    assert not domain.matches(domain.parse_filter('not (type eq "work")'), element)
    assert not domain.matches(domain.parse_filter("display pr"), element)


def user(**extra: object) -> dict:
    return scim.canonical(scim.USERS, {"schemas": [scim.USER], "userName": "ada@example.com", **extra})


def test_canonical_resources_keep_known_attributes_under_their_names() -> None:
    resource = scim.canonical(scim.USERS, {
        "schemas": [scim.USER, scim.ENTERPRISE], "USERNAME": "ada", "id": "client-chosen", "groups": [{"value": "g"}],
        "shoeSize": 44, "Active": "False", scim.ENTERPRISE: {"Department": "R&D"}})
    assert resource == {"userName": "ada", "active": False, scim.ENTERPRISE: {"department": "R&D"}}
    with pytest.raises(ScimError) as error:
        scim.canonical(scim.USERS, {"userName": "ada"})
    assert (error.value.status, error.value.scim_type) == (400, "invalidSyntax")


def test_patch_operations() -> None:
    resource = user(emails=[{"type": "work", "value": "a@x.com"}, {"type": "home", "value": "a@home.com"}])
    patched = scim.apply_patch(scim.USERS, resource, {**PATCH, "Operations": [
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "ada@x.com"},
        {"op": "remove", "path": 'emails[type eq "home"]'},
        {"op": "add", "value": {"name.familyName": "Lovelace", f"{scim.ENTERPRISE}:department": "Math"}},
        {"op": "Replace", "path": "active", "value": "False"}]})
    assert patched["emails"] == [{"type": "work", "value": "ada@x.com"}]
    assert patched["name"] == {"familyName": "Lovelace"}
    assert patched[scim.ENTERPRISE] == {"department": "Math"}
    assert patched["active"] is False
    assert "name" not in resource  # the original is untouched
    removed = scim.apply_patch(scim.USERS, patched, {**PATCH, "Operations": [
        {"op": "remove", "path": f"{scim.ENTERPRISE}:department"}]})
    assert scim.ENTERPRISE not in removed


@pytest.mark.parametrize("operation, scim_type", [
    ({"op": "remove"}, "noTarget"),
    ({"op": "replace", "path": 'emails[type eq "home"].value', "value": "x"}, "noTarget"),
    ({"op": "add", "path": "groups", "value": []}, "mutability"),
    ({"op": "add", "path": "shoeSize", "value": 1}, "invalidPath"),
    ({"op": "add", "path": "emails[type eq", "value": 1}, "invalidPath"),
    ({"op": "move", "path": "userName"}, "invalidSyntax"),
    ({"op": "replace", "path": "active", "value": "maybe"}, "invalidValue"),
])
def test_patch_refusals(operation: dict, scim_type: str) -> None:
    with pytest.raises(ScimError) as error:
        scim.apply_patch(scim.USERS, user(), {**PATCH, "Operations": [operation]})
    assert (error.value.status, error.value.scim_type) == (400, scim_type)


def test_a_scim_user_as_an_hr_record() -> None:
    full = user(name={"givenName": "Ada", "familyName": "Lovelace"}, emails=[
        {"value": "other@x.com"}, {"value": "ada@x.com", "primary": True}],
        addresses=[{"country": "gb", "locality": "London"}], preferredLanguage="en_GB",
        **{scim.ENTERPRISE: {"organization": "UK01", "department": "Math", "employeeNumber": "E7"}})
    assert scim.employee_id_for(full) == "E7"
    assert scim.employee_record(full, "E7", "E1") == {
        "employee_id": "E7", "email": "ada@x.com", "given_name": "Ada", "family_name": "Lovelace",
        "subsidiary": "UK01", "department": "Math", "site": "London", "country": "GB", "language": "en-GB",
        "manager_id": "E1"}
    minimal = scim.employee_record(user(displayName="Ada King"), "ada", None)
    assert (minimal["email"], minimal["given_name"], minimal["family_name"], minimal["country"],
            minimal["language"], minimal["subsidiary"]) == ("ada@example.com", "Ada", "King", "ZZ", "und", "unassigned")
    with pytest.raises(ScimError):
        scim.employee_record(scim.canonical(scim.USERS, {"schemas": [scim.USER], "userName": "ada"}), "ada", None)


def test_consent_and_withdrawal_times() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert domain.consent_expiry(now, 365) == now + timedelta(days=365)
    assert domain.reconsent_deadline(now, 0) == now
    enrolled = now - timedelta(days=10)
    assert domain.withdrawal_time(now, now + timedelta(days=30), enrolled) == now  # a future departure: at once
    assert domain.withdrawal_time(now, now - timedelta(days=3), enrolled) == now - timedelta(days=3)  # told late
    assert domain.withdrawal_time(now, now - timedelta(days=30), enrolled) == enrolled  # never before enrolling
    domain.check_consent_version("v1", None)
    domain.check_consent_version("v2", "v2")
    with pytest.raises(domain.ConsentTextOutdated):
        domain.check_consent_version("v1", "v2")


def test_quiet_hours_on_the_ambassadors_own_clock() -> None:
    winter_noon_utc = datetime(2026, 1, 15, 12, tzinfo=UTC)
    assert domain.in_quiet_hours(winter_noon_utc, time(12), time(14), "Europe/Paris")  # 13:00 in Paris
    assert not domain.in_quiet_hours(winter_noon_utc, time(12), time(14), "America/New_York")  # 07:00
    assert domain.in_quiet_hours(winter_noon_utc, time(22), time(8), "America/New_York")  # spans midnight
    assert not domain.in_quiet_hours(winter_noon_utc, None, None, "UTC")
    assert domain.valid_time_zone("Asia/Kolkata") and not domain.valid_time_zone("Mars/Olympus")


def test_targeting_by_groups_and_the_ambassadors_preferences() -> None:
    assert domain.in_audience(Audience(groups=["cyber", "execs"]), MEMBER)
    assert not domain.in_audience(Audience(groups=["execs"]), MEMBER)
    picky = replace(MEMBER, topics=frozenset({"hiring"}), languages=frozenset({"fr"}))
    assert domain.in_audience(Audience(), picky, "fr-CA", ["Hiring"])
    assert not domain.in_audience(Audience(), picky, "fr", ["security"])
    assert not domain.in_audience(Audience(), picky, "de", ["hiring"])


def test_unknown_subsidiaries_are_refused_only_once_a_tree_exists() -> None:
    domain.check_subsidiary("t", "XX", org_tree_configured=False, known=False)
    with pytest.raises(domain.UnknownSubsidiary, match="'XX'"):
        domain.check_subsidiary("t", "XX", org_tree_configured=True, known=False)


def test_tombstones_are_stable_and_hide_the_id() -> None:
    tombstone = domain.tombstone_id("acme", "E1042")
    assert tombstone == domain.tombstone_id("acme", "E1042") != domain.tombstone_id("other", "E1042")
    assert "E1042" not in tombstone and tombstone.startswith("erased-")
    assert domain.profile_changed({"subsidiary": "A", "department": "x"}, {"subsidiary": "B", "department": "x"})
    assert not domain.profile_changed({f: "v" for f in domain.PROFILE_FIELDS}, {f: "v" for f in domain.PROFILE_FIELDS})
