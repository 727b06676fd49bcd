"""tools/fuzz.py, briefly, on every `make test` (`make fuzz N=...` runs it at length; the
figures of long runs are in docs/reliability.md): no case may crash, hang, lose a line or
change the store by a refusal."""

import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "tools"))
import fuzz  # noqa: E402


def test_a_short_fuzz_run_finds_nothing(capsys):
    code = fuzz.main(["--text", "200", "--binary", "60", "--kill", "1", "--seed", "11"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "failures: none" in out
    # every stored case held lines = events + continuations + parse errors
    line = next(ln for ln in out.splitlines() if ln.startswith("accounting"))
    held, _, stored = line.split(": ")[1].partition(" of ")
    assert int(stored.split()[0].replace(",", "")) > 150 and held == stored.split()[0]
