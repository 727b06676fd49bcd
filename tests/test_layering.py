"""Data flows one way (ingest -> store -> lifecycle -> model -> result -> compare ->
report): each layer imports only what comes before it. Checked in a fresh interpreter, by
the modules an import actually loads."""

import json
import subprocess
import sys

import pytest
from conftest import REPO


def loaded_by(module: str) -> list[str]:
    """Every kreplay module that importing `module` loads."""
    code = (
        f"import json, sys; import {module}; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('kreplay'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize(
    "module",
    [
        "kreplay.report.html",
        "kreplay.report.trace_page",
        "kreplay.report.changes",
        "kreplay.report.directory",
        "kreplay.report.text",
    ],
)
def test_the_report_imports_no_model_and_no_lifecycle(module):
    loaded = loaded_by(module)
    assert not [m for m in loaded if m.startswith(("kreplay.model", "kreplay.lifecycle"))], loaded


def test_the_model_imports_no_lifecycle_and_lifecycle_no_model():
    model = loaded_by("kreplay.model.machine")
    assert "kreplay.lifecycle" not in model and "kreplay.ops" in model, model
    lifecycle = loaded_by("kreplay.lifecycle")
    assert not [m for m in lifecycle if m.startswith("kreplay.model")], lifecycle
