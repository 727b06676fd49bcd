"""The compiled scan (ingest/kdump_scan.py) reads every line it reads as the per-line SQL
(kdump_sql.line_parse_sql, the parse kreplay had before it) reads it: the same events,
continuations and parse errors, field by field, on the bundled traces, on grammar traces
and on mutated windows of them (tools/fuzz.py's mutations, seeded)."""

import random
import sys

import numpy as np
import pytest
from conftest import REPO

from kreplay.ingest.kdump import detect_layout, detect_options
from kreplay.ingest.kdump_parse import ChunkParser
from kreplay.ingest.source import Input, TextStream

sys.path.insert(0, str(REPO / "tools"))
import fuzz  # noqa: E402

TRACES = sorted((REPO / "traces").glob("*.kdump*"))


def parsed(path, all_sql: bool) -> list:
    """Every chunk of the file as plain rows: events, continuations, errors."""
    with Input(str(path)) as source:
        stream = TextStream(source, chunk=64 << 10)  # small chunks: seams get tested too
        layout = detect_layout(stream.head, detect_options(stream.head))
        parser = ChunkParser(layout, all_sql=all_sql)
        return [_rows(parser.parse(np.frombuffer(d, np.uint8), f, n)) for d, f, n in stream]


def _rows(chunk) -> dict:
    core = dict(chunk.core)
    for name in ("comm", "syscall", "fault"):
        strings = getattr(chunk, name)
        ids = strings.ids.astype(np.int64)
        core[name] = [strings.values[i] if i >= 0 else None for i in ids]
    order = np.argsort(core["seq"], kind="stable")
    events = [tuple(_plain(core[c][k]) for c in sorted(core)) for k in order]
    sides = {
        t: sorted(zip(*(map(_plain, v) for _, v in sorted(cols.items())), strict=True))
        for t, cols in chunk.sides.items()
    }
    errors = list(
        zip(*(map(_plain, chunk.errors[c]) for c in ("line", "text", "reason")), strict=True)
    )
    return {"events": events, "sides": sides, "errors": errors, "conts": chunk.conts}


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


@pytest.mark.parametrize("path", TRACES, ids=lambda p: p.name)
def test_the_scan_reads_the_bundled_traces_as_sql_does(path):
    assert parsed(path, all_sql=False) == parsed(path, all_sql=True)


def test_the_scan_reads_mutated_traces_as_sql_does(tmp_path):
    rnd = random.Random(16)
    windows = [fuzz._lines(p) for p in TRACES]
    if not fuzz._ALL_LINES:  # the lines a mutation inserts (fuzz.main fills it too)
        fuzz._ALL_LINES.extend(line for w in windows for line in w)
    for case in range(40):
        lines = list(rnd.choice(windows))
        start = rnd.randrange(max(1, len(lines) - 300))
        lines = lines[start : start + 300]
        for _ in range(rnd.randint(1, 6)):
            lines = fuzz.mutate_lines(rnd, lines)
        path = tmp_path / f"case{case}.kdump"
        path.write_bytes(b"".join(lines))
        try:
            fast = parsed(path, all_sql=False)
        except Exception as e:  # noqa: BLE001 (the SQL reading must fail alike)
            with pytest.raises(type(e)):
                parsed(path, all_sql=True)
            continue
        assert fast == parsed(path, all_sql=True), f"seed 16, case {case}"
