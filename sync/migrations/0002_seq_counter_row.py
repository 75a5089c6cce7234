from django.db import migrations


def create_counter(apps, schema_editor):  # noqa: ANN001, ANN201
    apps.get_model("sync", "SeqCounter").objects.get_or_create(pk=1, defaults={"value": 0})


class Migration(migrations.Migration):
    """Create the single counter row that hands out change sequence numbers."""

    dependencies = [("sync", "0001_initial")]
    operations = [migrations.RunPython(create_counter, migrations.RunPython.noop)]
