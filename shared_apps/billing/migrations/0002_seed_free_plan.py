from django.db import migrations


def seed(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    Plan.objects.update_or_create(
        code="free",
        defaults={
            "name": "Free",
            "stripe_price_id": "",
            "price_minor": 0,
            "currency": "usd",
            "max_seats": 5,
            "max_projects": 10,
            "max_storage_bytes": 1024 * 1024 * 1024,
            "trial_days": 0,
            "is_default": True,
            "is_active": True,
            "sort_order": 0,
        },
    )


def unseed(apps, schema_editor):
    apps.get_model("billing", "Plan").objects.filter(code="free", accounts__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_plans_accounts_events")]

    operations = [migrations.RunPython(seed, unseed)]
