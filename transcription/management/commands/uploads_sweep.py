"""`uploads_sweep [--older-than SECONDS]`: fail uploads a stopped server left unfinished."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from transcription.uploads.services import upload_sweep_stale

DEFAULT_OLDER_THAN_S = 1800


class Command(BaseCommand):
    help = (
        "Mark uploads still pending or being transcribed, without progress for --older-than seconds, "
        "as failed (interrupted), giving their audio seconds back to the month's usage."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=float,
            default=DEFAULT_OLDER_THAN_S,
            metavar="SECONDS",
            help="Seconds without progress before an upload counts as orphaned "
            f"(default {DEFAULT_OLDER_THAN_S}).",
        )

    def handle(self, *args, **options):
        if options["older_than"] < 0:
            raise CommandError("--older-than must not be negative")
        swept = upload_sweep_stale(older_than_s=options["older_than"])
        for session_id in swept:
            self.stdout.write(session_id)
        self.stderr.write(f"{len(swept)} orphaned upload(s) marked as interrupted")
