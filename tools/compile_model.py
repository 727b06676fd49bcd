"""Compile the allocator model (kreplay/model/) with mypyc, in place; `make` runs this.

Type-checks and compiles the modules kreplay.model.native names, writes an extension
module beside each source and mypyc's shared library (kreplay/model/_native__mypyc.*),
then records the sha256 of every source in kreplay/model/compiled.json, last: the model
runs compiled only while that record matches the sources (kreplay/model/native.py).
Generated C and objects go to build/mypyc/. Needs the `compile` extra (mypy, setuptools)
and a C compiler with the Python headers. Usage: `python tools/compile_model.py`.
"""

import json
import os
from pathlib import Path

from mypyc.build import mypycify
from setuptools import Distribution

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    os.chdir(ROOT)  # mypyc names modules by their paths from here
    from kreplay.model import native  # loads no model module

    native.RECORD.unlink(missing_ok=True)
    for old in native.HERE.glob("*.so"):  # a module no longer compiled must not shadow its source
        old.unlink()
    paths = [f"kreplay/model/{m}.py" for m in native.COMPILED]
    build = ROOT / "build" / "mypyc"
    extensions = mypycify(
        paths,
        opt_level="3",
        group_name=f"{native.PACKAGE}.{native.GROUP}",
        target_dir=str(build / "c"),
    )
    dist = Distribution({"name": "kreplay-model", "ext_modules": extensions})
    command = dist.get_command_obj("build_ext")
    command.inplace = True
    command.build_temp = str(build / "temp")
    dist.run_command("build_ext")
    native.RECORD.write_text(json.dumps(native.source_digests(), indent=1, sort_keys=True) + "\n")
    print(f"compiled {len(paths)} model modules with mypyc; record in {native.RECORD.name}")


if __name__ == "__main__":
    main()
