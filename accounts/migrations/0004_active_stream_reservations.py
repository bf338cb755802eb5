from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_account_settings"),
    ]

    operations = [
        migrations.AddField(
            model_name="activestream",
            name="reserved_seconds",
            field=models.FloatField(default=0.0),
        ),
        migrations.AddField(
            model_name="activestream",
            name="billed_seconds",
            field=models.FloatField(default=0.0),
        ),
    ]
