from django.db import migrations, models


def score_by_name(apps, schema_editor):
    Probe = apps.get_model("fleet_probe", "Probe")
    for probe in Probe.objects.all():
        probe.score = len(probe.name)
        probe.save(update_fields=["score"])


class Migration(migrations.Migration):
    """An unnamed CHECK (>= 0) through Django's executor, with Python code per tenant."""

    dependencies = [("fleet_probe", "0001_initial")]
    operations = [
        migrations.AddField("probe", "score", models.PositiveSmallIntegerField(default=0)),
        migrations.RunPython(score_by_name, migrations.RunPython.noop),
    ]
