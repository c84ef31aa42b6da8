from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fleet_probe", "0001_initial")]
    operations = [
        migrations.AddField("probe", "weight", models.IntegerField(default=0)),
        migrations.AddIndex("probe", models.Index(fields=["weight"], name="probe_weight_idx")),
    ]
