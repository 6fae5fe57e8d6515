"""catalogsite.prepared: look-ups compiled once must return exactly what `restrict()` returns, for every user."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from catalogsite.choices import Action
from catalogsite.prepared import PreparedLookup, any_of
from products.models import Band
from tests.factories import make_user
from tests.raster.helpers import make_product, rgb_bands

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    alice = make_user("alice", org="porg")
    superuser = make_user("root", org="porg")
    superuser.is_superuser = True
    superuser.save()
    inactive = make_user("gone", org="porg")
    inactive.is_active = False
    inactive.save()
    return {
        "alice": alice,
        "carol": make_user("carol", org="porg"),
        "dave": make_user("dave", org="porg", groups=["team"]),
        "admin": make_user("erin", org="porg", org_admin=True),
        "bob": make_user("bob", org="otherorg"),
        "root": superuser,
        "inactive": inactive,
        "anonymous": AnonymousUser(),
    }


@pytest.fixture
def bands(people):
    alice, bob = people["alice"], people["bob"]
    first = make_product(alice, "first", rgb_bands())
    second = make_product(bob, "second", rgb_bands())
    Band.objects.filter(product=first, name="red").update(readers=["org:porg"])
    Band.objects.filter(product=first, name="green").update(writers=["group:porg:team"])
    Band.objects.filter(product=first, name="blue").update(owners=[f"user:{bob.namespace}"], readers=["org:porg"])
    Band.objects.filter(product=second, name="red").update(readers=[f"email:{alice.email}"])
    return [first.pk, second.pk]


@pytest.mark.parametrize("action", [Action.VIEW, Action.CHANGE, Action.SHARE])
def test_every_user_gets_what_restrict_gives(people, bands, action):
    lookup = PreparedLookup(Band, action, lambda qs, product_ids: qs.filter(any_of("product_id", product_ids)))
    seen = {}
    for name, user in people.items():
        expected = set(Band.objects.restrict(user, action).filter(product_id__in=bands).values_list("pk", flat=True))
        got = {band.pk for band in lookup(user, product_ids=bands)}
        assert got == expected, name
        seen[name] = got
    assert seen["root"] and not seen["anonymous"] and not seen["inactive"]
    assert len({frozenset(v) for v in seen.values()}) >= 3  # the users really differ, so the test can fail
    assert len(lookup._compiled) == 1  # compiled once for all ordinary users


def test_scalar_and_list_arguments_and_model_instances(people, bands):
    lookup = PreparedLookup(Band, Action.VIEW, lambda qs, product_id, name: qs.filter(product_id=product_id, name=name))
    (band,) = lookup(people["carol"], product_id=bands[0], name="red")
    assert isinstance(band, Band) and band.product_id == bands[0] and band.readers == ["org:porg"]
    assert lookup(people["carol"], product_id=bands[0], name="green") == []  # only the team may read it
    assert [b.name for b in lookup(people["dave"], product_id=bands[0], name="green")] == ["green"]
    assert lookup(people["bob"], product_id=bands[0], name="red") == []
    many = PreparedLookup(Band, Action.VIEW, lambda qs, ids: qs.filter(any_of("pk", ids)))
    ids = list(Band.objects.filter(product_id=bands[0]).values_list("pk", flat=True))
    assert {b.pk for b in many(people["alice"], ids=ids)} == set(ids)
    assert {b.pk for b in many(people["alice"], ids=ids[:1])} == set(ids[:1])  # same SQL, another length


def test_an_argument_the_query_does_not_use_is_refused(people):
    lookup = PreparedLookup(Band, Action.VIEW, lambda qs, product_id: qs.filter(name="red"))
    with pytest.raises(ValueError, match="product_id"):
        lookup(people["alice"], product_id="x")


def test_fetch_together_returns_what_each_look_up_returns(people, bands):
    from catalogsite.prepared import fetch_together

    by_product = PreparedLookup(Band, Action.VIEW, lambda qs, product_id: qs.filter(product_id=product_id))
    by_name = PreparedLookup(Band, Action.CHANGE, lambda qs, names: qs.filter(any_of("name", names)))
    for name in ("carol", "dave", "bob", "root", "anonymous"):
        user = people[name]
        first, second = fetch_together(
            [(by_product, user, {"product_id": bands[0]}), (by_name, user, {"names": ["red", "green"]})]
        )
        assert sorted(b.pk for b in first) == sorted(b.pk for b in by_product(user, product_id=bands[0])), name
        assert sorted(b.pk for b in second) == sorted(b.pk for b in by_name(user, names=["red", "green"])), name
        assert {b.pk for b in first} == set(
            Band.objects.restrict(user, Action.VIEW).filter(product_id=bands[0]).values_list("pk", flat=True)
        )


def test_look_ups_must_select_the_models_own_columns(people):
    joined = PreparedLookup(Band, Action.VIEW, lambda qs, name: qs.filter(name=name).select_related("product"))
    with pytest.raises(ValueError, match="own columns"):
        joined(people["alice"], name="red")
