from django.db import migrations, models


def mark_checked(apps, schema_editor):
    Probe = apps.get_model("fleet_probe", "Probe")
    Probe.objects.update(checked=True)
    if Probe.objects.filter(name="poison").exists():
        raise ValueError("a probe named 'poison' cannot be migrated")


class Migration(migrations.Migration):
    """Python code per tenant; fails on a tenant holding a probe named 'poison'."""

    dependencies = [("fleet_probe", "0001_initial")]
    operations = [
        migrations.AddField("probe", "checked", models.BooleanField(default=False)),
        migrations.RunPython(mark_checked, migrations.RunPython.noop),
    ]
