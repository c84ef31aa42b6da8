from django.db import migrations, models


class Migration(migrations.Migration):
    """Fails on a tenant whose data has two probes with one name."""

    dependencies = [("fleet_probe", "0001_initial")]
    operations = [
        migrations.AddField("probe", "checked", models.BooleanField(default=False)),
        migrations.AddConstraint(
            "probe", models.UniqueConstraint(fields=["name"], name="probe_name_unique")
        ),
    ]
