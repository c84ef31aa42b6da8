from django.db import migrations, models


class Migration(migrations.Migration):
    """Two changes with a pause between them: a kill lands between them in some tenant."""

    dependencies = [("fleet_probe", "0001_initial")]
    operations = [
        migrations.AddField("probe", "first_half", models.IntegerField(default=0)),
        migrations.RunSQL("SELECT pg_sleep(0.3)", migrations.RunSQL.noop),
        migrations.AddField("probe", "second_half", models.IntegerField(default=0)),
    ]
