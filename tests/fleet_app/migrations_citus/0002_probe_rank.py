from django.db import migrations, models


class Migration(migrations.Migration):
    """What Citus refuses as Django writes it: ADD COLUMN with an unnamed CHECK (>= 0), and
    a unique column."""

    dependencies = [("fleet_probe", "0001_initial")]
    operations = [
        migrations.AddField("probe", "rank", models.PositiveIntegerField(default=0)),
        migrations.AddField(
            "probe", "code", models.CharField(max_length=8, null=True, unique=True)
        ),
    ]
