"""Which build of the model runs: compiled by mypyc, or its Python source.

`make` compiles the modules in COMPILED with mypyc (tools/compile_model.py), in place: an
extension module beside each source, which Python's import prefers to the source. The
build records the sha256 of every source it compiled in compiled.json. Before any model
module is imported, kreplay.model calls use_build(): when the record does not match the
sources (a source was edited since, or there is no build), or KREPLAY_PURE_PYTHON is set,
every module in COMPILED is loaded from its source instead. All of them together: mypyc's
modules call each other directly, so compiled and interpreted ones cannot mix. Both builds
run the same code, so a replay's results are byte-identical in either; only the speed
differs (docs/performance.md).
"""

import hashlib
import importlib.util
import json
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec
from pathlib import Path

HERE = Path(__file__).parent
PACKAGE = "kreplay.model"
COMPILED = ("domainset", "phys", "reserv", "vmem", "policy", "uma", "kstack", "machine")
GROUP = "_native"  # mypyc's shared library of the group: _native__mypyc.<suffix>
RECORD = HERE / "compiled.json"
PURE_ENV = "KREPLAY_PURE_PYTHON"


def source_digests() -> dict[str, str]:
    """sha256 of each compiled module's source, as the build records them."""
    return {m: hashlib.sha256((HERE / f"{m}.py").read_bytes()).hexdigest() for m in COMPILED}


def why_source() -> str | None:
    """None when the compiled build matches the sources; else why the source runs."""
    if os.environ.get(PURE_ENV):
        return f"{PURE_ENV} is set"
    built = [f"{GROUP}__mypyc", *COMPILED]
    if not all(any((HERE / f"{m}{s}").exists() for s in EXTENSION_SUFFIXES) for m in built):
        return "not compiled (`make` compiles it)"
    try:
        record = json.loads(RECORD.read_text())
    except (OSError, ValueError):
        return "not compiled (`make` compiles it)"
    changed = [m for m, digest in source_digests().items() if record.get(m) != digest]
    if changed:
        names = ", ".join(f"{m}.py" for m in changed)
        return f"{names} changed since compiled (`make` compiles it again)"
    return None


class _SourceFinder:
    """A meta path finder that loads the COMPILED modules from their .py files."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        package, _, module = name.rpartition(".")
        if package != PACKAGE or module not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(name, HERE / f"{module}.py")


BUILD = "compiled (mypyc)"  # what use_build() chose, for --version and the benches


def use_build() -> None:
    """Choose the build, once, before the first model module is imported."""
    global BUILD
    reason = why_source()
    if reason is not None:
        BUILD = f"Python source: {reason}"
        if not any(isinstance(f, _SourceFinder) for f in sys.meta_path):
            sys.meta_path.insert(0, _SourceFinder())
