from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("workspace", "0001_initial")]
    operations = [
        migrations.AddField(
            "workspacesettings", "locale", models.CharField(max_length=16, default="en")
        ),
    ]
