"""Trace and revision names: the one alphabet both are held to where they enter (ingest,
revision files, plugins), because they become paths (golden/<trace>/<revision>.json, the
report's pages) and must never reach outside those folders.

A name is 1 to 128 characters of letters, digits, `.`, `_`, `+` and `-`, starting with a
letter or a digit (so never `..`, never a hidden file, never an option).
"""

import re

from kreplay.errors import UsageError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
ALPHABET = "1-128 letters, digits, '.', '_', '+', '-', starting with a letter or digit"


def check_name(what: str, name: object) -> str:
    """`name` if it is a valid trace or revision name, else a UsageError naming `what`."""
    if not isinstance(name, str) or NAME.fullmatch(name) is None:
        raise UsageError(f"{what} {name!r} is not a valid name ({ALPHABET})")
    return name
