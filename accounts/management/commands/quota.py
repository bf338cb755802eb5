"""`quota set --user NAME ...`: set a user's limits."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.services import quota_set
from audit.services import Origin


class Command(BaseCommand):
    help = "Set a user's quota; limits not given keep their current (or default) value."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        setter = sub.add_parser("set")
        setter.add_argument("--user", required=True)
        setter.add_argument("--monthly-minutes", type=int)
        setter.add_argument("--max-streams", type=int)
        setter.add_argument("--max-session-seconds", type=int)
        setter.add_argument("--max-upload-mb", type=int)

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"no user {options['user']!r}")
        for name in ("monthly_minutes", "max_streams", "max_session_seconds", "max_upload_mb"):
            if options[name] is not None and options[name] < 0:
                raise CommandError(f"--{name.replace('_', '-')} must not be negative")
        quota = quota_set(
            user=user,
            origin=Origin(via="manage.py quota"),
            monthly_audio_seconds=None
            if options["monthly_minutes"] is None
            else options["monthly_minutes"] * 60,
            max_concurrent_streams=options["max_streams"],
            max_session_seconds=options["max_session_seconds"],
            max_upload_bytes=None
            if options["max_upload_mb"] is None
            else options["max_upload_mb"] * 1024 * 1024,
        )
        self.stdout.write(
            f"{user.username}: {quota.monthly_audio_seconds // 60} min/month, "
            f"{quota.max_concurrent_streams} streams, {quota.max_session_seconds} s/session, "
            f"{quota.max_upload_bytes // (1024 * 1024)} MiB/upload"
        )
