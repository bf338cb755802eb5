"""`apikey create|list|revoke`: manage API keys from the shell."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import ALL_SCOPES, ApiKey
from accounts.services import api_key_create, api_key_revoke
from audit.services import Origin

SHELL = Origin(via="manage.py apikey")  # the audit log's actor: none (the shell)


class Command(BaseCommand):
    help = "Create, list and revoke API keys. `create` prints only the secret on stdout."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a key and print its secret")
        create.add_argument("--user", required=True)
        create.add_argument("--name", default="")
        create.add_argument("--scopes", nargs="+", default=ALL_SCOPES, choices=ALL_SCOPES)
        create.add_argument("--expires-days", type=int, default=None)
        create.add_argument("--create-user", action="store_true", help="create the user if missing")
        listing = sub.add_parser("list", help="list keys (never secrets)")
        listing.add_argument("--user", default=None)
        revoke = sub.add_parser("revoke", help="revoke a key by its prefix")
        revoke.add_argument("prefix")

    def handle(self, *args, **options):
        getattr(self, f"handle_{options['action']}")(options)

    def handle_create(self, options):
        User = get_user_model()
        user = User.objects.filter(username=options["user"]).first()
        if user is None:
            if not options["create_user"]:
                raise CommandError(f"no user {options['user']!r} (pass --create-user to create it)")
            user = User.objects.create_user(username=options["user"])
            self.stderr.write(f"created user {user.username} (no password; set one with changepassword)")
        expires = None
        if options["expires_days"] is not None:
            expires = timezone.now() + dt.timedelta(days=options["expires_days"])
        key, secret = api_key_create(
            owner=user, name=options["name"], scopes=options["scopes"], expires_at=expires, origin=SHELL
        )
        self.stderr.write(f"created key {key.prefix} for {user.username} with scopes {' '.join(key.scopes)}")
        self.stdout.write(secret)

    def handle_list(self, options):
        keys = ApiKey.objects.select_related("owner").order_by("owner__username", "-created_at")
        if options["user"]:
            keys = keys.filter(owner__username=options["user"])
        for key in keys:
            state = "revoked" if key.is_revoked else ("expired" if key.is_expired() else "active")
            last = key.last_used_at.isoformat() if key.last_used_at else "never"
            fields = [key.prefix, key.owner.username, key.name or "-", ",".join(key.scopes), state, last]
            self.stdout.write("\t".join(fields))

    def handle_revoke(self, options):
        key = ApiKey.objects.filter(prefix=options["prefix"]).first()
        if key is None:
            raise CommandError(f"no key with prefix {options['prefix']!r}")
        api_key_revoke(key=key, origin=SHELL)
        self.stdout.write(f"revoked {key.prefix}")
