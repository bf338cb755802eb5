#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main():
    """Run administrative tasks."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sttproject.settings")
    try:
        from django.core.management import execute_from_command_line
    except ImportError as exc:
        raise ImportError(
            "Couldn't import Django. Are you sure it's installed and "
            "available on your PYTHONPATH environment variable? Did you "
            "forget to activate a virtual environment?"
        ) from exc
    try:
        execute_from_command_line(sys.argv)
    except Exception as exc:
        # `doctor` explains settings (or an app) that stop Django from starting, instead of a traceback.
        from django.apps import apps

        if sys.argv[1:2] != ["doctor"] or apps.ready:
            raise
        from transcription.ops.doctor import startup_error_report

        sys.exit(startup_error_report(exc, sys.argv[2:]))


if __name__ == "__main__":
    main()
