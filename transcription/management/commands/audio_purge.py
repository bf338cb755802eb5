"""manage.py audio_purge: remove stored audio past its retention (the sessions and their text stay)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from transcription.recordings.purge import audio_purge


class Command(BaseCommand):
    help = (
        "Remove stored session audio older than STT_AUDIO_STORE['RETENTION_DAYS'] (0 keeps it), counted "
        "from the session's end (its start if unfinished). Sessions and transcripts are kept."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--older-than-days",
            type=int,
            default=None,
            help="Retention in days for this run (default: STT_AUDIO_RETENTION_DAYS; 0 keeps everything)",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only report what would be removed")

    def handle(self, *args, older_than_days: int | None, dry_run: bool, **options) -> None:
        days = settings.STT_AUDIO_STORE["RETENTION_DAYS"] if older_than_days is None else older_than_days
        if days < 0:
            raise CommandError("--older-than-days must be 0 or more.")
        if days == 0:
            self.stdout.write("Retention is 0 days: stored audio is kept until its session is deleted.")
            return
        result = audio_purge(older_than_days=days, dry_run=dry_run)
        verb = "Would remove" if dry_run else "Removed"
        self.stdout.write(
            f"{verb} the audio of {result.sessions} session(s), {result.bytes} bytes, older than {days} days."
        )
        if result.failed:
            raise CommandError(f"{result.failed} file(s) could not be removed; see the log.")
