"""The README's session is real: every `$ kreplay ...` line of README.md runs, in order,
in a folder holding a copy of traces/ (the default store, ./kreplay.duckdb), and each
output line the README shows appears in the command's output, in the README's order
(`...` stands for lines left out). A README that drifts from what kreplay prints fails
here, not in front of a new user."""

import shlex
import shutil

from conftest import REPO, run_main


def session(text: str) -> list[tuple[str, list[str]]]:
    """(command, the output lines shown) for each indented `$ kreplay` block; a command
    goes on over lines while a quote is open."""
    out: list[tuple[str, list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("    $ kreplay "):
            i += 1
            continue
        command = line[6:]
        while command.count('"') % 2:
            i += 1
            command += " " + lines[i].strip()
        shown = []
        i += 1
        while i < len(lines) and lines[i].startswith("    ") and not lines[i].startswith("    $"):
            shown.append(lines[i][4:].rstrip())
            i += 1
        out.append((command, shown))
    return out


def test_the_readme_session_prints_what_the_readme_shows(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KREPLAY_DB", raising=False)
    monkeypatch.delenv("CI", raising=False)
    shutil.copytree(REPO / "traces", tmp_path / "traces")
    commands = session((REPO / "README.md").read_text())
    assert len(commands) >= 8, "the README's session went missing"
    for command, shown in commands:
        argv = shlex.split(command, comments=True)[1:]
        if argv[0] == "ingest":  # the shell's glob, in its order
            argv = [argv[0]] + [
                str(p.relative_to(tmp_path))
                for pattern in argv[1:]
                for p in sorted(tmp_path.glob(pattern))
            ]
        code, out, err = run_main(argv, capsys)
        assert code in (0, 1, 2) and "Traceback" not in err, f"{command}: {err}"
        printed = [line.rstrip() for line in (out + err).splitlines()]
        at = 0
        for expected in shown:
            if expected == "...":
                continue
            try:
                at = printed.index(expected, at) + 1
            except ValueError:
                raise AssertionError(
                    f"README: `{command}` shows\n  {expected}\nwhich it does not print "
                    f"(there or after the lines before it); it printed:\n" + out + err
                ) from None
