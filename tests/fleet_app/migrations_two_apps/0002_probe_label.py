from django.db import migrations, models


class Migration(migrations.Migration):
    """Released together with workspace.0002 (tests.fleet_app.workspace_next): one plan that
    spans two apps, neither an ancestor of the other."""

    dependencies = [("fleet_probe", "0001_initial")]
    operations = [
        migrations.AddField("probe", "label", models.CharField(max_length=20, default=""))
    ]
