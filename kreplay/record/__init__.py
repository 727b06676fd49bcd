"""The FreeBSD side of a recording: record.sh, shipped with kreplay as package data and
printed by `kreplay record --script` (docs/recording.md). kreplay never runs it here; the
tests run it on Linux against stub FreeBSD commands (tests/test_record_script.py)."""

import hashlib
from importlib import resources

SCRIPT = "record.sh"


def script_text() -> str:
    """record.sh as installed with this kreplay."""
    return resources.files(__package__).joinpath(SCRIPT).read_text(encoding="utf-8")


def script_info() -> dict[str, str]:
    """Where the installed script is, its sha256, and how to run it."""
    text = script_text()
    return {
        "script": str(resources.files(__package__).joinpath(SCRIPT)),
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "usage": "kreplay record --script > record.sh; then on the FreeBSD machine: "
        "sh record.sh -o DIR -n NAME COMMAND [ARGUMENT ...]",
    }
