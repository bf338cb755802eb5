"""`doctor [--json] [--skip-model] [--deploy]`: check this machine and configuration, and say how to fix."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from transcription.ops import doctor


class Command(BaseCommand):
    help = (
        "Check Python and the pinned packages, the configured model (load and transcribe one second), "
        "CUDA and its libraries, the database and migrations, Redis and the inference workers, and "
        "Django's deployment checks. Exits 1 when a check fails (warnings do not)."
    )
    # The doctor runs Django's checks itself (with the deployment ones) and reports each.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the checks as JSON.")
        parser.add_argument("--skip-model", action="store_true", help="Do not load the model (a fast run).")
        parser.add_argument(
            "--deploy",
            action="store_true",
            help="Production: DEBUG, SECRET_KEY, ALLOWED_HOSTS and secure cookies fail instead of warn "
            "(they do when DEBUG is off anyway).",
        )

    def handle(self, *args, **options):
        results = doctor.run_all(skip_model=options["skip_model"], deploy=options["deploy"])
        self.stdout.write(doctor.render_json(results) if options["json"] else doctor.render_text(results))
        if doctor.overall(results) == doctor.FAIL:
            raise SystemExit(1)
