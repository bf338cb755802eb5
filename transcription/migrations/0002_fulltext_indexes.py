"""Full-text search indexes on PostgreSQL (no-op elsewhere).

The expression matches what django.contrib.postgres SearchVector("text", config="english")
generates, so history searches can use the index.
"""

from django.db import migrations

INDEXES = [
    ("transcript_text_fts", "transcription_transcript"),
    ("segment_text_fts", "transcription_segment"),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, table in INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} "
            f"USING GIN (to_tsvector('english'::regconfig, COALESCE(text, '')))"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("transcription", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
