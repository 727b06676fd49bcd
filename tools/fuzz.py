"""Fuzzing kreplay's readers and what they feed (issue 14, docs/reliability.md).

    python tools/fuzz.py [--text N] [--binary N] [--kill N] [--seed S] [--jobs N]
                         [--json FILE] [--save DIR] [--workdir DIR]

`make fuzz N=...` runs it at length; tests/test_fuzz.py briefly on every `make test`. The
cases, each checked against what the contract promises (DESIGN §3, §8):

- text grammar: random records printed as kdump prints them (tests/kdump_grammar.py, the
  spec's grammar as hypothesis strategies) must read back field by field;
- text mutations: windows of the bundled traces (and of grammar traces) with 1-6
  mutations (numbers past their range, bytes of every kind, lines cut, repeated, swapped,
  tags changed, layouts mixed): every line must be an event, a continuation or a parse
  error (lines = events + continuations + parse errors, from the traces row and from the
  rows themselves), a refusal must leave the store as it was, and the ops derived from
  the trace (and one replay in REPLAY_EVERY) must end as an outcome, never an exception;
- binary: seeded ktrace.out files (tests/ktrace_writer.py, its layouts checked against the
  C compiler) as they are and with their bytes mutated: the reader either stores every
  record (events = records + dropped markers) or refuses with the byte offset;
- kill: `kreplay ingest` of a large file killed with SIGKILL at a random moment: the store
  must open and hold what it held before (or the whole trace), and the next ingest must
  remove the chunk copies the killed one left.

It prints the cases run per family, the failures by kind with one example each, and the
accounting check over every case that was stored; exit 1 if anything failed.

The cases' stores and files are on tmpfs (/dev/shm) when there is one: an ingest there
is the same ingest, without the disk (the kill trials keep a store on disk, as a user's
is). --jobs N runs the cases in N processes, each with its own share of the cases, its
own seed (from --seed and its number: the same run for the same arguments) and its own
store; their tallies are merged in worker order. --jobs 1 is the run of earlier sessions:
the same seed gives the same cases.
"""

import argparse
import gzip
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this tree's kreplay, whatever the interpreter has installed
sys.path.insert(0, str(ROOT / "tests"))  # the grammar and the binary writer

import ktrace_writer as kw  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from kdump_grammar import COLUMNS, render, traces  # noqa: E402

from kreplay import lifecycle as lc  # noqa: E402
from kreplay.errors import KreplayError  # noqa: E402
from kreplay.ingest import ingest  # noqa: E402
from kreplay.model.machine import machine_config  # noqa: E402
from kreplay.replay import replay  # noqa: E402
from kreplay.revisions import lookup, registry  # noqa: E402
from kreplay.schema import EVENT_TABLES  # noqa: E402
from kreplay.store import Store  # noqa: E402

CASE_SECONDS = 60  # a case that runs longer is a failure of its own kind: "hang"
REPLAY_EVERY = 25  # one mutated trace in this many is replayed too
CASES_PER_STORE = 200
TRACES = sorted((ROOT / "traces").glob("*.kdump*"))
FAST_TMP = "/dev/shm"  # tmpfs: the cases' stores and files, when it is there
BIG = [10**20, 2**64, 2**63, 2**63 - 1, 2**62, 2**32, 2**31, 2**31 - 1, 10**10, 0, -1, -(2**63)]


class CaseTimeout(Exception):
    pass


@dataclass
class Tally:
    cases: Counter = field(default_factory=Counter)  # family -> cases run
    outcomes: Counter = field(default_factory=Counter)  # (family, outcome) -> count
    failures: Counter = field(default_factory=Counter)  # (family, kind) -> count
    examples: dict = field(default_factory=dict)  # (family, kind) -> one example
    accounted: int = 0  # stored cases whose lines were all accounted for
    stored: int = 0

    save: Path | None = None  # where failing cases are written, each whole
    save_tag: str = ""  # in their names: the worker's (-w1), with --jobs

    def record(self, family: str, outcome: str, failure: str | None = None, example=None) -> None:
        self.cases[family] += 1
        self.outcomes[family, outcome] += 1
        if failure is not None:
            self.failures[family, failure] += 1
            self.examples.setdefault((family, failure), example)
            if self.save is not None and isinstance(example, bytes):
                n = sum(self.failures.values())
                (self.save / f"{family}{self.save_tag}-{n}.case").write_bytes(example)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def merge(self, other: "Tally") -> None:
        """Add another worker's tally (in worker order: the first example of a kind is
        that of the lowest worker)."""
        self.cases.update(other.cases)
        self.outcomes.update(other.outcomes)
        self.failures.update(other.failures)
        for key, example in other.examples.items():
            self.examples.setdefault(key, example)
        self.accounted += other.accounted
        self.stored += other.stored


class Fuzzer:
    def __init__(self, workdir: Path, rnd: random.Random, killdir: Path | None = None):
        """workdir: the cases' stores and files; killdir: the kill trials' (on disk)."""
        self.workdir, self.rnd, self.tally = workdir, rnd, Tally()
        self.killdir = killdir or workdir
        self.revision = lookup(registry(), "D38852")
        self.machine = machine_config("amd64", {"mem_per_domain_mb": "64"})
        self._store, self._in_store, self._n = None, 0, 0
        self._totals: tuple | None = None  # the store's row counts after its last case
        self.windows = [_lines(p) for p in TRACES]
        # the lines a mutation inserts: the first 2,000 of each trace (read once)
        self.others = [line for lines in self.windows for line in lines[:2000]]

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # ------------------------------------------------------------------ plumbing

    def store(self) -> Store:
        if self._store is None or self._in_store >= CASES_PER_STORE:
            if self._store is not None:
                self._store.close()
                os.unlink(self._store.path)
            self._store = Store(str(self.workdir / f"fuzz-{self._n}.duckdb"))
            self._in_store, self._totals = 0, None
        self._in_store += 1
        return self._store

    def totals(self, store: Store) -> tuple:
        """The store's row counts before a case: those the last case's query left, or
        counted now (a new store, or the last case crashed)."""
        if self._totals is None:
            self._totals = store.con.execute(f"SELECT {_TOTALS}").fetchone()
        return self._totals

    def case_file(self, data: bytes, suffix: str = ".kdump") -> Path:
        self._n += 1
        path = self.workdir / f"case-{self._n}{suffix}"
        path.write_bytes(data)
        return path

    def run(self, family: str, data: bytes, suffix: str, check, plain: bytes | None = None) -> None:
        """Ingest one case (`data` as the file holds it; `plain`, its decompressed bytes)
        and hold it to `check`; every exception that is not a KreplayError is a failure,
        and so is a case past CASE_SECONDS."""
        path = self.case_file(data, suffix)
        store = self.store()
        before = self.totals(store)
        self._totals = None  # until this case's counts are read
        signal.alarm(CASE_SECONDS)
        try:
            try:
                result = ingest(store, str(path), name=f"c{self._n}")
            except KreplayError as e:
                after = self._totals = store.con.execute(f"SELECT {_TOTALS}").fetchone()
                failure = None if after == before else "a refusal changed the store"
                self.tally.record(family, "refused: " + _kind(str(e)), failure, data)
                return
            failure = check(store, result.trace, data if plain is None else plain)
            self.tally.record(family, "stored", failure, data)
        except CaseTimeout:
            self.tally.record(family, "hang", "a case ran past its time", data[:2000])
        except Exception as e:  # the point of fuzzing: none of these may happen
            kind = f"{type(e).__name__}: {str(e)[:80]}"
            self.tally.record(family, "crashed", kind, data[:2000])
        finally:
            signal.alarm(0)
            path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ checks

    def accounted(self, store: Store, trace, data: bytes) -> str | None:
        """lines = events + continuations + parse errors, from the row and from the rows
        (of the events view: its joins must not add or lose a row). The same query counts
        the store's rows, which the next case holds a refusal to."""
        self.tally.stored += 1
        lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
        events, cont, errors, *totals = store.con.execute(
            "SELECT count(*), coalesce(sum(cont_lines), 0), "
            f"(SELECT count(*) FROM parse_errors WHERE trace_id = $1), {_TOTALS} "
            "FROM events WHERE trace_id = $1",
            [trace.trace_id],
        ).fetchone()
        self._totals = tuple(totals)
        if trace.format == "ktrace":
            ok = trace.events == events and errors == 0
        else:
            ok = trace.lines == lines == trace.events + trace.continuations + trace.parse_errors
            ok = ok and (events, cont, errors) == (
                trace.events,
                trace.continuations,
                trace.parse_errors,
            )
        if not ok:
            return "lines not accounted for"
        self.tally.accounted += 1
        return None

    def downstream(self, store: Store, trace, data: bytes) -> str | None:
        """The trace's ops, and one replay in REPLAY_EVERY: an outcome, never an error."""
        problem = self.accounted(store, trace, data)
        if problem:
            return problem
        derived = lc.derive_trace(store, trace.trace_id, trace.options, hz=self.machine.hz)
        if self._n % REPLAY_EVERY == 0:
            result, _ = replay(derived, trace.name, trace.sha256, self.revision, self.machine, {})
            if result.outcome.status not in ("ok", "panic", "hang"):
                return f"outcome {result.outcome.status}"
        return None

    # ------------------------------------------------------------------ families

    def text_grammar(self, n: int, seed: int) -> None:
        @hypothesis_seed(seed)
        @settings(
            max_examples=n,
            phases=[Phase.generate],
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(trace=traces(wide=True))
        def case(trace):
            opts, recs = trace
            text = "".join(render(r, opts) + "\n" for r in recs)

            def check(store, info, data):
                problem = self.accounted(store, info, data)
                if problem or info.events != len(recs) or info.parse_errors:
                    return problem or "a grammar line was not read as an event"
                got = store.con.execute(
                    f"SELECT {', '.join(COLUMNS)} FROM events WHERE trace_id = ? ORDER BY seq",
                    [info.trace_id],
                ).fetchall()
                want = [tuple(r.expected(opts)[c] for c in COLUMNS) for r in recs]
                return None if got == want else "a field read back differs"

            self.run_given_options("text-grammar", text.encode(), opts.letters, check)

        case()

    def run_given_options(self, family: str, data: bytes, letters: str, check) -> None:
        """As run(), with the kdump options the grammar printed (detection has its own
        tests: a grammar trace can be ambiguous)."""
        path = self.case_file(data)
        store = self.store()
        self._totals = None  # until this case's counts are read
        signal.alarm(CASE_SECONDS)
        try:
            result = ingest(store, str(path), name=f"c{self._n}", kdump_options=letters or "")
            self.tally.record(family, "stored", check(store, result.trace, data), data[:2000])
        except CaseTimeout:
            self.tally.record(family, "hang", "a case ran past its time", data[:2000])
        except Exception as e:
            kind = f"{type(e).__name__}: {str(e)[:80]}"
            self.tally.record(family, "crashed", kind, data[:2000])
        finally:
            signal.alarm(0)
            path.unlink(missing_ok=True)

    def text_mutations(self, n: int) -> None:
        for _ in range(n):
            lines = self.window()
            for _ in range(self.rnd.randint(1, 6)):
                lines = mutate_lines(self.rnd, lines, self.others)
            data = b"".join(lines)
            if self.rnd.random() < 0.1:
                data = data[: self.rnd.randrange(len(data) + 1)]  # the file cut anywhere
            plain, suffix = data, ".kdump"
            if self.rnd.random() < 0.05:
                data, suffix = gzip.compress(data, mtime=0), ".kdump.gz"
                if self.rnd.random() < 0.5:  # a broken compressed stream
                    data = data[: self.rnd.randrange(len(data) + 1)]
            self.run("text-mutation", data, suffix, self.downstream, plain)

    def window(self) -> list[bytes]:
        lines = self.rnd.choice(self.windows)
        size = self.rnd.choice([5, 30, 200, 1000])
        start = self.rnd.randrange(max(1, len(lines) - size))
        return lines[start : start + size]

    def binary(self, n: int) -> None:
        for _ in range(n):
            abi = self.rnd.choice(kw.ABIS)
            records = list(kw.random_records(self.rnd, self.rnd.randint(1, 300), abi, 0.2))
            data = kw.write(records, abi)
            mutated = self.rnd.random() < 0.8
            if mutated:
                data = mutate_bytes(self.rnd, bytearray(data), binary=True)
            expected = len(records) + sum(r.dropped for r in records)

            def check(store, info, raw, exact=not mutated, expected=expected):
                problem = self.accounted(store, info, raw)
                if problem:
                    return problem
                if exact and info.events != expected:
                    return "records lost"
                lc.derive_trace(store, info.trace_id, info.options)
                return None

            self.run("binary-mutation" if mutated else "binary", bytes(data), ".ktr", check)

    def kills(self, n: int) -> None:
        """SIGKILL an ingest at a random moment, n times: of a ~1.3 M-line kdump text
        (even trials) and of a 2 M-record ktrace.out (odd ones, read a window at a time:
        windows are written before the file's end)."""
        if n <= 0:
            return
        text = (ROOT / "traces" / "ls-i386-book.kdump").read_bytes() * 40_000
        binary = b""
        if n > 1:
            records = kw.random_records(random.Random(self.rnd.random()), 2_000_000)
            binary = b"".join(r.to_bytes() for r in records)
        db = self.killdir / "kill.duckdb"
        with Store(str(db)) as store:
            ingest(store, str(ROOT / "traces" / "uul-freebsd12.kdump"))
        for trial in range(n):
            # a file of its own: one a trial before finished would be found stored at once
            if trial % 2:
                big = self.killdir / "big.ktr"
                big.write_bytes(binary + kw.namei(b"/kill/%d" % trial).to_bytes())
            else:
                big = self.killdir / "big.kdump"
                big.write_bytes(text + b"kill trial %d\n" % trial)
            with Store(str(db)) as store:
                before = _counts(store)
            proc = subprocess.Popen(
                [sys.executable, "-m", "kreplay", "ingest", "--db", str(db), str(big),
                 "--name", f"big{trial}"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=dict(os.environ, PYTHONPATH=str(ROOT)),
            )  # fmt: skip
            time.sleep(self.rnd.uniform(0.1, 3.5))  # both ingests take ~3 s
            proc.kill()
            proc.wait()
            self.tally.record(
                "kill", *self._after_kill(db, before, f"big{trial}"), f"trial {trial}"
            )

    def _after_kill(self, db: Path, before: tuple, name: str) -> tuple[str, str | None]:
        """(outcome, failure) of one kill: the store opens, holds what it held or the whole
        trace, and once the next ingest has run nothing is left beside it but the store
        and the trial's file (no spill files, no copies of the input)."""
        try:
            with Store(str(db)) as store:
                finished = store.has_name(name)
                if not finished and _counts(store) != before:
                    return "killed", "the store holds part of a trace"
                ingest(store, str(ROOT / "traces" / "sixnix-freebsd.kdump"))
        except KreplayError as e:
            return "killed", f"the store does not open after the kill: {str(e)[:80]}"
        kept = {db.name, f"{db.name}.wal", "big.kdump", "big.ktr"}
        left = sorted(p.name for p in db.parent.iterdir() if p.name not in kept)
        if left:
            return "killed", f"files left beside the store: {', '.join(left)[:80]}"
        return ("finished first" if finished else "killed, store as before"), None


# ---------------------------------------------------------------------------- mutations


def mutate_lines(
    rnd: random.Random, lines: list[bytes], others: list[bytes] | None = None
) -> list[bytes]:
    """One mutation of a window; `others`: the lines op 7 inserts (_ALL_LINES unless
    given)."""
    if not lines:
        return [rnd.randbytes(rnd.randrange(40)) + b"\n"]
    i = rnd.randrange(len(lines))
    line = lines[i]
    op = rnd.randrange(10)
    if op == 0:  # a number past its range
        words = line.split(b" ")
        spots = [k for k, w in enumerate(words) if w.strip(b"-.").isdigit() or w.startswith(b"0x")]
        if spots:
            k = rnd.choice(spots)
            value = rnd.choice(BIG)
            words[k] = (
                hex(value) if words[k].startswith(b"0x") and value >= 0 else str(value)
            ).encode()
            if rnd.random() < 0.3:
                words[k] += b"." + str(rnd.randrange(10**9)).encode()
            line = b" ".join(words)
    elif op == 1:
        return lines[:i] + lines[i + 1 :]
    elif op == 2:
        return lines[:i] + [line] * rnd.randint(2, 5) + lines[i + 1 :]
    elif op == 3:
        j = rnd.randrange(len(lines))
        lines = list(lines)
        lines[i], lines[j] = lines[j], lines[i]
        return lines
    elif op == 4:
        line = line[: rnd.randrange(len(line) + 1)] + (b"\n" if rnd.random() < 0.7 else b"")
    elif op == 5:  # another record's tag, or a made-up one
        tags = [
            b"CALL",
            b"RET ",
            b"NAMI",
            b"PFLT",
            b"PRET",
            b"PSIG",
            b"GIO ",
            b"XXXX",
            b"UNKNOWN(99)",
        ]
        for tag in tags:
            if tag in line:
                line = line.replace(tag, rnd.choice(tags), 1)
                break
    elif op == 6:
        line = bytes(mutate_bytes(rnd, bytearray(line), binary=False))
    elif op == 7:  # a line of another trace (another layout, often)
        return lines[:i] + [rnd.choice(_ALL_LINES if others is None else others)] + lines[i:]
    elif op == 8:
        line = line.replace(b" ", b"  ", 1) if rnd.random() < 0.5 else line.replace(b"  ", b" ", 1)
    else:
        line = line.rstrip(b"\n") + rnd.choice([b"\r\n", b"\x00\n", b" \n", b"\xff\xfe\n", b"\t\n"])
    lines = list(lines)
    lines[i] = line
    return lines


def mutate_bytes(rnd: random.Random, data: bytearray, binary: bool) -> bytearray:
    for _ in range(rnd.randint(1, 8)):
        if not data:
            data += rnd.randbytes(8)
        op = rnd.randrange(5 if binary else 4)
        at = rnd.randrange(len(data))
        if op == 0:
            data[at] ^= 1 << rnd.randrange(8)
        elif op == 1:
            data[at : at + 1] = rnd.randbytes(rnd.randint(0, 4))
        elif op == 2:
            data[at:at] = rnd.choice(
                [b"\x00", b"\r", b"\x1b[0m", b"\xe2\x9d\xb6", b"\xc3", rnd.randbytes(3)]
            )
        elif op == 3:
            del data[at : at + rnd.randint(1, 16)]
        else:  # a header field of a record set to an extreme (binary only)
            value = rnd.choice(BIG)
            width = rnd.choice([2, 4, 8])
            data[at : at + width] = (value % (1 << (8 * width))).to_bytes(width, "little")
    if binary and rnd.random() < 0.2:
        data = data[: rnd.randrange(len(data) + 1)]
    return data


# ---------------------------------------------------------------------------- helpers


def _lines(path: Path) -> list[bytes]:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    lines = raw.splitlines(keepends=True)
    return lines[:20_000]  # plenty of windows, bounded memory


_ALL_LINES: list[bytes] = []


# Every table a trace's ingest writes (and the ops caches), counted in one SELECT list:
# what a refusal must leave as it was, and what a killed ingest must not have added to.
_TABLES = ("traces", *EVENT_TABLES, "parse_errors", "ops", "op_sets")
_TOTALS = ", ".join(f"(SELECT count(*) FROM {t})" for t in dict.fromkeys(_TABLES))


def _counts(store: Store) -> tuple:
    return store.con.execute(f"SELECT {_TOTALS}").fetchone()


def _kind(message: str) -> str:
    """A refusal's message without what varies (paths, numbers)."""
    text = message.split(": ", 1)[-1]
    for word in text.split():
        if any(c.isdigit() for c in word):
            text = text.replace(word, "N")
    return text[:70]


def _alarm(signum, frame):
    raise CaseTimeout()


def report(tally: Tally) -> str:
    out = ["family            cases    outcome"]
    for family in sorted(tally.cases):
        outcomes = sorted((o, c) for (f, o), c in tally.outcomes.items() if f == family)
        first = True
        for outcome, count in sorted(outcomes, key=lambda x: -x[1]):
            prefix = f"{family:<16} {tally.cases[family]:>7,}" if first else " " * 24
            out.append(f"{prefix}    {count:>7,}  {outcome}")
            first = False
    out.append("")
    if tally.failures:
        out.append("FAILURES by kind (one example each):")
        for (family, kind), count in sorted(tally.failures.items()):
            out.append(f"  {count:>6,}  {family}: {kind}")
            out.append(f"          e.g. {tally.examples[family, kind]!r:.300}")
    else:
        out.append("failures: none")
    out.append(
        f"accounting (lines = events + continuations + parse errors): "
        f"{tally.accounted:,} of {tally.stored:,} stored cases"
    )
    return "\n".join(out) + "\n"


def _fast_tmp() -> str | None:
    """tmpfs for the cases when the machine has it (no fsync, no disk), else the default."""
    return FAST_TMP if os.path.isdir(FAST_TMP) and os.access(FAST_TMP, os.W_OK) else None


def _share(total: int, jobs: int, j: int) -> int:
    """Worker j's share of `total` cases: the first total % jobs workers one more."""
    return total // jobs + (1 if j < total % jobs else 0)


def worker_seed(seed: int, jobs: int, j: int) -> int:
    """The seed of worker j of `jobs`: --seed itself with one job (the runs of earlier
    sessions), else a number of (seed, jobs, j) that no other worker or seed shares."""
    if jobs == 1:
        return seed
    digest = hashlib.sha256(f"kreplay fuzz seed {seed} worker {j} of {jobs}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def run_cases(spec: dict) -> Tally:
    """One worker's cases (spec: text, binary, kill, seed, workdir, save, tag): grammar,
    mutations, binary, then the kill trials, all from one random stream."""
    signal.signal(signal.SIGALRM, _alarm)
    rnd = random.Random(spec["seed"])
    with (
        tempfile.TemporaryDirectory(prefix="kreplay-fuzz-", dir=spec["workdir"]) as tmp,
        tempfile.TemporaryDirectory(prefix="kreplay-fuzz-kill-") as killdir,
    ):
        fuzzer = Fuzzer(Path(tmp), rnd, Path(killdir))
        fuzzer.tally.save, fuzzer.tally.save_tag = spec["save"], spec["tag"]
        try:
            grammar = spec["text"] // 4
            if grammar:  # hypothesis runs at least one example
                fuzzer.text_grammar(grammar, spec["seed"])
            fuzzer.text_mutations(spec["text"] - grammar)
            fuzzer.binary(spec["binary"])
            fuzzer.kills(spec["kill"])
        finally:
            fuzzer.close()
    return fuzzer.tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--text", type=int, default=1000, help="text cases (grammar 1 in 4)")
    parser.add_argument("--binary", type=int, default=200, help="binary cases")
    parser.add_argument("--kill", type=int, default=0, help="kill -9 trials")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (1: in this one)")
    parser.add_argument("--json", type=Path, help="also write the tally as JSON")
    parser.add_argument("--save", type=Path, help="write each failing case to this folder")
    parser.add_argument(
        "--workdir", help=f"the cases' stores and files (default: {FAST_TMP} if there, else TMPDIR)"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir or _fast_tmp()
    started = time.monotonic()
    specs = [
        {
            "text": _share(args.text, args.jobs, j),
            "binary": _share(args.binary, args.jobs, j),
            "kill": args.kill if j == 0 else 0,  # one after another: each kill is timed
            "seed": worker_seed(args.seed, args.jobs, j),
            "workdir": workdir,
            "save": args.save,
            "tag": f"-w{j}" if args.jobs > 1 else "",
        }
        for j in range(args.jobs)
    ]
    if args.jobs == 1:
        tally = run_cases(specs[0])
    else:
        import multiprocessing

        with ProcessPoolExecutor(
            args.jobs, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            tallies = list(pool.map(run_cases, specs))
        tally = Tally()
        for part in tallies:  # in worker order: the same merge for the same arguments
            tally.merge(part)
    seconds = time.monotonic() - started
    cases = sum(n for family, n in tally.cases.items() if family != "kill")
    print(report(tally), end="")
    print(
        f"seed {args.seed}, {seconds:.0f} s, {args.jobs} job(s): {cases:,} cases, "
        f"{cases / max(seconds, 1e-9):.1f} cases/s (the kill trials' time included)"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "seed": args.seed,
                    "jobs": args.jobs,
                    "seconds": round(seconds, 1),
                    "cases": dict(tally.cases),
                    "outcomes": {f"{f}: {o}": c for (f, o), c in tally.outcomes.items()},
                    "failures": {f"{f}: {k}": c for (f, k), c in tally.failures.items()},
                    "examples": {
                        f"{f}: {k}": repr(e)[:300] for (f, k), e in tally.examples.items()
                    },
                    "accounted": tally.accounted,
                    "stored": tally.stored,
                },
                indent=2,
                sort_keys=True,
            )
            + "\n"
        )
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
