from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("sync", "0002_seq_counter_row")]

    operations = [
        migrations.AddField(
            model_name="change",
            name="before",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
