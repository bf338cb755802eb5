"""Create a local superuser with a generated password when no superuser exists."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the 'admin' superuser with a random password, printed once, if there is no superuser."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, **options):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("A superuser already exists; nothing to do.")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=options["username"], email="", password=password)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created superuser '{options['username']}' with password: {password}\n"
                "This password is shown only now; change it with `python manage.py changepassword`."
            )
        )
