"""The process's engine follows catalog edits row by row, builds only when it must."""

import pytest

from recommender.models import Category, Item
from recommender.services.live import live
from sync.selectors import seq_latest
from tests import factories


def caught_up():
    """Tell the process about every committed change, as a broadcast would."""
    live.engine.note_seq(seq_latest())
    return live.engine.current()


@pytest.mark.django_db
def test_edits_new_items_and_deletions_reach_the_engine_without_a_build():
    items = factories.catalog(12)
    before = live.engine.current()
    books = Category.objects.get(name="Books")

    items[3].active = False
    items[3].save()
    items[4].title = "Renamed lamp"
    items[4].save()
    items[5].delete()
    added = Item.objects.create(title="Brand new", category=books, price=7)
    state = caught_up()

    assert state.engine.feature_space is before.engine.feature_space
    assert state.engine.rows_patched == 3
    assert items[3].pk not in state.active_ids
    assert items[5].pk not in state.active_ids
    assert added.pk in state.active_ids
    assert state.title(items[4].pk) == "Renamed lamp"
    assert state.title(added.pk) == "Brand new"
    assert len(state.active_ids) == 11
    # The state before the edits still answers as it did.
    assert items[3].pk in before.active_ids


@pytest.mark.django_db
def test_a_renamed_category_builds_the_engine_again():
    factories.catalog(6)
    before = live.engine.current()
    books = Category.objects.get(name="Books")
    books.name = "Novels"
    books.save()
    state = caught_up()
    assert state.engine.feature_space is not before.engine.feature_space
    assert state.engine.catalog.category_names == ["Novels", "Games", "Music"]


@pytest.mark.django_db(transaction=True)
def test_a_large_catalog_builds_in_the_background_while_the_old_engine_serves(
    settings,
):
    settings.RECS_CATALOG_INLINE_BUILD_MAX = 0
    items = factories.catalog(6)
    before = live.engine.current()
    Category.objects.get(name="Books").delete()
    items[1].active = False
    items[1].save()
    state = caught_up()
    # The deletion renumbers categories: no row-by-row patch, and the build
    # runs in a thread; until it lands the engine is the one before.
    assert state.engine is before.engine
    live.engine.builder.join(timeout=30)
    state = caught_up()
    assert state.engine.catalog.category_names == ["Games", "Music"]
    assert items[1].pk not in state.active_ids
    assert state.catalog_seq == seq_latest()


@pytest.mark.django_db
def test_unknown_and_odd_ids_are_not_active():
    items = factories.catalog(3)
    active = live.engine.current().active_ids
    assert items[0].pk in active
    assert 10**6 not in active
    assert 2**70 not in active
    assert "1" not in active
    assert True not in active


@pytest.mark.django_db(transaction=True)
def test_a_failed_background_build_is_tried_again_not_left_stale(settings, monkeypatch):
    from recommender.services import live as live_module

    settings.RECS_CATALOG_INLINE_BUILD_MAX = 0
    factories.catalog(6)
    live.engine.current()
    load = live_module.catalog_load

    def database_away():
        raise ConnectionError("database away")

    monkeypatch.setattr(live_module, "catalog_load", database_away)
    Category.objects.get(name="Books").delete()
    caught_up()
    live.engine.builder.join(timeout=30)
    assert not live.engine.stale
    # Within the retry pause no build starts, and the engine is not marked as
    # waiting for one either.
    caught_up()
    assert not live.engine.stale

    monkeypatch.setattr(live_module, "catalog_load", load)
    monkeypatch.setattr(live_module, "_BUILD_RETRY_SECS", 0.0)
    caught_up()
    live.engine.builder.join(timeout=30)
    state = caught_up()
    assert state.engine.catalog.category_names == ["Games", "Music"]
