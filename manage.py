#!/usr/bin/env python
"""Django's command-line utility for the platform."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# `platform/` is a plain folder on the import path, not a package (see README).
for entry in (ROOT / "platform", ROOT):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    from django.core.management import execute_from_command_line
    from django.db.utils import OperationalError

    try:
        execute_from_command_line(sys.argv)
    except OperationalError as error:
        # An unreachable database is an operator's problem to fix, not a stack trace to read.
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        sys.stderr.write(f"Database error: {first_line}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
