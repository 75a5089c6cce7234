"""sync as a reusable app, on its own test model: registry, record, snapshot, checks."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core import checks
from django.core.management import call_command
from django.db import models, transaction
from django.test import override_settings

import sync
from sync.models import Change
from sync.registry import AlreadyRegistered, NotRegistered, synced, synced_models
from sync.selectors import seq_latest
from tests.sync.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_test_apps_sync_module_was_discovered():
    entry = synced(Note)
    assert entry.name == "note"
    assert entry in synced_models()
    assert list(entry.get_queryset()) == []


def test_a_save_and_a_delete_reach_the_log_through_the_registration():
    start = seq_latest()
    note = Note.objects.create(text="first", stars=3, price=Decimal("1.50"))
    note.text = "second"
    note.save()
    pk = note.pk
    note.delete()
    rows = list(Change.objects.filter(seq__gt=start).order_by("seq"))
    assert [(r.seq, r.model, r.op) for r in rows] == [
        (start + 1, "note", "upsert"),
        (start + 2, "note", "upsert"),
        (start + 3, "note", "delete"),
    ]
    assert rows[1].object_id == str(pk)
    # The default serialiser: every concrete field, JSON-safe.
    assert rows[1].data == {"id": pk, "text": "second", "stars": 3, "price": "1.50"}
    assert rows[2].data is None


def test_record_logs_a_bulk_write_without_a_wire_name_or_serialiser():
    start = seq_latest()
    with transaction.atomic():
        notes = Note.objects.bulk_create(
            [Note(text=f"bulk {i}", stars=i) for i in range(3)]
        )
        seqs = sync.record(Note, notes)
    assert seqs == [start + 1, start + 2, start + 3]
    logged = list(Change.objects.filter(seq__gt=start).values_list("model", "data"))
    assert [(m, d["text"]) for m, d in logged] == [
        ("note", "bulk 0"),
        ("note", "bulk 1"),
        ("note", "bulk 2"),
    ]
    gone = [notes[0].pk, notes[1]]  # primary keys or instances
    Note.objects.filter(pk__in=[notes[0].pk, notes[1].pk]).delete()
    seqs = sync.record(Note, gone, op="delete")
    assert list(Change.objects.filter(seq__in=seqs).values_list("op", "object_id")) == [
        ("delete", str(notes[0].pk)),
        ("delete", str(notes[1].pk)),
    ]


def test_record_refuses_an_unregistered_model_and_a_bad_op():
    with pytest.raises(NotRegistered):
        sync.record(Change, [])
    with pytest.raises(ValueError):
        sync.record(Note, [], op="update")


def test_a_model_or_a_wire_name_registers_once():
    with pytest.raises(AlreadyRegistered):
        sync.register(Note, name="note2")

    class Other(models.Model):
        class Meta:
            app_label = "synctest"
            managed = False

    with pytest.raises(AlreadyRegistered, match="wire name"):
        sync.register(Other, name="note")
    sync.register(Other, name="other", serialize=lambda obj: {"id": obj.pk})
    try:
        assert synced(Other).serialize(Other(pk=4)) == {"id": 4}
    finally:
        sync.unregister(Other)
    with pytest.raises(NotRegistered):
        synced(Other)


def test_snapshot_at_seq_returns_the_read_with_the_seq_it_reflects():
    Note.objects.create(text="a")
    Note.objects.create(text="b")
    seq, texts = sync.snapshot_at_seq(
        lambda: list(Note.objects.order_by("id").values_list("text", flat=True))
    )
    assert (seq, texts) == (seq_latest(), ["a", "b"])


def test_sync_prune_trims_the_log_to_its_configured_size():
    Note.objects.bulk_create([Note(text=str(i)) for i in range(5)])
    sync.record(Note, Note.objects.all())
    latest = seq_latest()
    out = StringIO()
    with override_settings(SYNC_CHANGELOG_MAX_ROWS=2):
        call_command("sync_prune", stdout=out)
    assert "Deleted" in out.getvalue()
    assert list(Change.objects.values_list("seq", flat=True)) == [latest - 1, latest]


@pytest.mark.parametrize("value", [0, -1.5, "15", None, True])
def test_checks_refuse_a_setting_that_is_not_a_positive_number(value):
    with override_settings(SYNC_HEARTBEAT_SECS=value):
        errors = [e for e in checks.run_checks() if e.id.startswith("sync.")]
    assert [e.id for e in errors] == ["sync.E001"]
    assert "SYNC_HEARTBEAT_SECS" in errors[0].msg


def test_checks_pass_with_the_defaults():
    assert [e for e in checks.run_checks() if e.id.startswith("sync.")] == []
