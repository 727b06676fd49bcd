"""Shared fixtures and helpers for the kreplay tests.

Every test writes only below its own tmp_path: sample files are copied there before they
are ingested, and each test has its own store file.
"""

import os
import shutil
from pathlib import Path

import pytest

from kreplay.cli import main
from kreplay.ingest import ingest
from kreplay.store import Store, TraceInfo

REPO = Path(__file__).resolve().parents[1]


# The real published kdump excerpts: verbatim copies under traces/, each with a sidecar
# saying where it was published (traces/<name>.toml). Tests name them by the number they
# carry in the sample collection they were copied from (the sidecar's first line).
SAMPLES = {
    "01": "uul-freebsd12",
    "02": "sixnix-freebsd",
    "05": "golang20850-sh-rtld",
    "07": "cheribsd-qt-thr_new",
    "10": "ls-i386-book",
    "11": "ukr-lab-malloc-grep",
    "12": "ukr-lab-gio-hexdump",
}
SAMPLE_FILES = [REPO / "traces" / f"{name}.kdump" for name in SAMPLES.values()]


def sample_id(path: Path) -> str:
    """The sample number of one of SAMPLE_FILES (a test id)."""
    return next(k for k, name in SAMPLES.items() if path.name == f"{name}.kdump")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.duckdb"


def copy_sample(tmp_path: Path, number: str) -> Path:
    """Copy sample `number` (SAMPLES) into tmp_path; the copy keeps the trace's name."""
    src = REPO / "traces" / f"{SAMPLES[number]}.kdump"
    dst = tmp_path / src.name
    shutil.copyfile(src, dst)
    return dst


def ingest_text(
    tmp_path: Path,
    text: str | bytes,
    name: str = "t",
    *,
    db: Path | None = None,
    filename: str | None = None,
    **kw,
) -> TraceInfo:
    """Write `text` to tmp_path/<filename> and ingest it as trace `name`.

    The store defaults to tmp_path/'store.duckdb' (the same file as the `db` fixture)."""
    path = tmp_path / (filename or f"{name}.kdump")
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_bytes(text.encode("utf-8"))
    with Store(str(db or tmp_path / "store.duckdb")) as store:
        return ingest(store, str(path), name=name, **kw).trace


def query(db: Path, sql: str, params: list | None = None) -> list[dict]:
    """Rows of a read-only query as dicts."""
    with Store(str(db), read_only=True) as store:
        if params:
            cur = store.con.execute(sql, params)
            columns = [d[0] for d in cur.description]
            rows = cur.fetchall()
        else:
            result = store.query(sql)
            columns, rows = result.columns, [r for batch in result.batches for r in batch]
    return [dict(zip(columns, row, strict=True)) for row in rows]


def events(db: Path, trace_name: str) -> list[dict]:
    """All events of one trace as dicts, in file order (seq)."""
    return query(
        db,
        "SELECT e.* FROM events e JOIN traces t USING (trace_id) WHERE t.name = ? ORDER BY seq",
        [trace_name],
    )


def parse_errors(db: Path, trace_name: str) -> list[dict]:
    return query(
        db,
        "SELECT p.* FROM parse_errors p JOIN traces t USING (trace_id) "
        "WHERE t.name = ? ORDER BY line",
        [trace_name],
    )


def trace_row(db: Path, trace_name: str) -> dict:
    (row,) = query(db, "SELECT * FROM traces WHERE name = ?", [trace_name])
    return row


def table_counts(db: Path) -> dict[str, int]:
    """Rows per table: the store's whole state as far as a failed ingest can touch it."""
    return {
        table: query(db, f"SELECT count(*) AS n FROM {table}")[0]["n"]
        for table in ("traces", "events", "parse_errors")
    }


def printf_comm(comm: str) -> str:
    """`%-8.*s` with precision MAXCOMLEN (19), as C's printf does it: in bytes, not
    characters (a multi-byte name gets fewer padding spaces)."""
    raw = comm.encode("utf-8")[:19]
    return (raw + b" " * (8 - len(raw))).decode("utf-8")


def header(
    pid: int,
    comm: str,
    tag: str,
    *,
    tid: int | None = None,
    ts: tuple[str, ...] = (),
    cpu: int | None = None,
    abi: str | None = None,
) -> str:
    """A kdump header exactly as dumpheader() prints it (spec §1.1)."""
    out = f"{pid:6d} "
    if tid is not None:
        out += f"{tid:6d} "
    out += printf_comm(comm) + " "
    out += "".join(t + " " for t in ts)
    if cpu is not None:
        out += f"{cpu:3d} "
    out += f"{tag:<4}  "
    if abi is not None:
        out += abi + "  "
    return out


def run_main(args, capsys) -> tuple[int, str, str]:
    """kreplay.cli.main as the installed script runs it: exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as excinfo:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return excinfo.value.code, out, err


def assert_one_line_error(err: str, *fragments: str) -> None:
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("kreplay: error: "), err
    for fragment in fragments:
        assert fragment in err, err


def write_recording(shape: str, seed: int, folder: str, wrong=None) -> str:
    """A synthetic recording of `shape` at scale 1 in `folder` (trace, sidecar, snapshots;
    `wrong` adds errors to counters of the after snapshot): its sidecar's path."""
    from kreplay.synth import synth_file
    from kreplay.synth.recording import add_snapshots

    trace = os.path.join(folder, f"{shape}.kdump")
    synth_file(shape, seed, 1, trace, with_sidecar=True)
    add_snapshots(shape, seed, 1, trace, wrong)
    return os.path.join(folder, f"{shape}.toml")
