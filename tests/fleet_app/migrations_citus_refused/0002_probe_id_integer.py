from django.db import migrations, models


class Migration(migrations.Migration):
    """An id column's type changed (BigAutoField to AutoField): Citus cannot change a
    distributed identity column or its sequence."""

    dependencies = [("fleet_probe", "0001_initial")]
    operations = [
        migrations.AlterField(
            "probe",
            "id",
            models.AutoField(
                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
            ),
        ),
        migrations.AddField("probe", "flag", models.BooleanField(default=False)),
    ]
