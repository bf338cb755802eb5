"""`manage.py serve`: Daphne for this project, passing the allow-listed underscore headers."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from sttproject import daphne


class Command(BaseCommand):
    help = (
        "Serve HTTP and WebSockets with Daphne. Request headers whose names contain an underscore are "
        "dropped as by Daphne, except those in STT_UNDERSCORE_HEADERS (default: lang_code). "
        "Further daphne options go after --, e.g. `manage.py serve -p 8001 -- --proxy-headers`."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("-b", "--bind", default="127.0.0.1", help="address to bind to")
        parser.add_argument("-p", "--port", type=int, default=8000, help="port to listen on")
        parser.add_argument("daphne_args", nargs="*", help="further daphne command-line options (after --)")

    def handle(self, *args, bind: str, port: int, daphne_args: list[str], **options) -> None:
        module, _, attribute = settings.ASGI_APPLICATION.rpartition(".")
        argv = ["-b", bind, "-p", str(port), *daphne_args, f"{module}:{attribute}"]
        daphne.run(argv, settings.STT_UNDERSCORE_HEADERS)
