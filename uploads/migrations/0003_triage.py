import django.utils.timezone
from django.db import migrations, models
from django.db.models import F


def last_progress_from_updated_at(apps, schema_editor):  # type: ignore[no-untyped-def]
    apps.get_model("uploads", "Submission").objects.update(last_progress_at=F("updated_at"))


class Migration(migrations.Migration):

    dependencies = [
        ('tenants', '0003_upload_link'),
        ('uploads', '0002_delivery_and_expiry'),
    ]

    operations = [
        migrations.AddField(
            model_name='event',
            name='reason',
            field=models.CharField(blank=True, help_text='Why staff did it, in their words.', max_length=500),
        ),
        migrations.AddField(
            model_name='submission',
            name='last_progress_at',
            field=models.DateTimeField(default=django.utils.timezone.now, help_text='The last sign of life: a stage change, a recorded part, a finished file.'),
        ),
        migrations.RunPython(last_progress_from_updated_at, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name='submission',
            index=models.Index(fields=['stage', 'last_progress_at'], name='uploads_sub_stage_605feb_idx'),
        ),
        migrations.AddIndex(
            model_name='submission',
            index=models.Index(fields=['artisan_id'], name='uploads_sub_artisan_05d7d8_idx'),
        ),
        migrations.AddIndex(
            model_name='event',
            index=models.Index(fields=['action', 'created_at'], name='uploads_eve_action_951231_idx'),
        ),
        migrations.AddIndex(
            model_name='mediaupload',
            index=models.Index(fields=['status', 'updated_at'], name='uploads_med_status_a35b43_idx'),
        ),
    ]
