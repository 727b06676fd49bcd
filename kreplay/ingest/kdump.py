"""How kdump(1) prints a trace: header layouts, kdump options, record bodies.

kdump text has no file header, so the options a file was printed with (-H tid column,
-T/-E/-R timestamps, -c cpu column, -A ABI column) are detected from its first lines
(spec/kdump-format.md §1.1, §1.5). Every pattern here is written once and used twice:
by Python's `re` for option detection and tests, and by DuckDB (RE2) for the bulk parse,
so both read the same format. Only the syntax both engines share is used.
"""

import re
from dataclasses import dataclass

from kreplay.errors import UsageError

# Type tags as printed: 4 characters, then two spaces (spec §1.2). CheriBSD adds "ERR ".
TAGS = (
    "CALL",
    "RET ",
    "NAMI",
    "GIO ",
    "PSIG",
    "CSW ",
    "USER",
    "STRU",
    "SCTL",
    "CAP ",
    "PFLT",
    "PRET",
    "ARGS",
    "ENVS",
    "EERR",
    "ERR ",
)
KINDS = tuple(tag.strip() for tag in TAGS) + ("UNKNOWN", "DROP")
_TAG_ALT = "|".join(TAGS)

# `%6d ` as printed for values below 10**6: exactly six characters.
_WIDTH6 = "(?: {5}[0-9]| {4}[0-9]{2}| {3}[0-9]{3}| {2}[0-9]{4}| [0-9]{5}|[0-9]{6})"
# `%3d ` for cpu numbers below 1000.
_WIDTH3 = "(?:  [0-9]| [0-9]{2}|[0-9]{3})"
_TS = r"-?[0-9]+\.[0-9]{6}(?:[0-9]{3})?"
_COMM = ".{8,19}?"  # `%-8.*s`: padded to 8 bytes, cut at MAXCOMLEN = 19 bytes
# The same in characters for the fallback pattern: 8 to 19 characters, or fewer when the
# name holds a multi-byte character (kdump pads and cuts in bytes). Never starts with a space.
_ANY_COMM = "(?:[^ ].{7,18}?|[^ ].{0,6}?[^\\x00-\\x7F].{0,11}?)"
# The tid column: `%6d` of a tid (> PID_MAX = 99999) or 0 for an invalid one.
_TID = "(?: {5}0|[0-9]{6})"
_ANY_TID = "( *(?:0|[0-9]{6,}))"
_ABI = "[FLU](?:64|32|00)C?"

_TS_LETTERS = "TER"  # kdump prints the timestamp columns in this fixed order


@dataclass(frozen=True)
class KdumpOptions:
    """The kdump options that change the shape of a record header."""

    tid: bool = False  # -H
    timestamps: str = ""  # subset of "TER" in print order, e.g. "T" or "TE"
    cpu: bool = False  # -c
    abi: bool = False  # -A

    @property
    def letters(self) -> str:
        return (
            ("H" if self.tid else "")
            + self.timestamps
            + ("c" if self.cpu else "")
            + ("A" if self.abi else "")
        )

    def __str__(self) -> str:
        return " ".join("-" + ch for ch in self.letters) or "(none)"


def parse_options(text: str) -> KdumpOptions:
    """Options as a user writes them: "HTc", "-H -T -c", "-HTc". Body-only options
    (-n -d -S -r -s -m) are accepted and ignored: the parser reads every body form."""
    letters = text.replace("-", "").replace(" ", "").replace(",", "")
    unknown = set(letters) - set("HTERcAndSrslmpf0123456789")
    if unknown:
        raise UsageError(f"unknown kdump option(s) {''.join(sorted(unknown))!r} in {text!r}")
    return KdumpOptions(
        tid="H" in letters,
        timestamps="".join(ch for ch in _TS_LETTERS if ch in letters),
        cpu="c" in letters,
        abi="A" in letters,
    )


# ---------------------------------------------------------------------------- patterns


@dataclass(frozen=True)
class Layout:
    """A file's header layout: its kdump options and the usual width of each timestamp
    column as (seconds digits, fraction digits), e.g. (10, 9) for `-T` on a v1 kernel."""

    opts: KdumpOptions
    ts_widths: tuple[tuple[int, int], ...] = ()


def fast_prefix_pattern(layout: Layout) -> str:
    """The header as kdump prints it for pid/tid < 10**6, cpu < 1000, an ASCII command
    name and timestamps of the file's usual widths: every field but the command name
    has a fixed width, so fields can be cut out by position. Matches up to the body."""
    opts = layout.opts
    parts = ["^", _WIDTH6, " "]
    if opts.tid:
        parts += [_TID, " "]
    parts += [_COMM, " "]
    for seconds, fraction in layout.ts_widths:
        parts += [f"[0-9]{{{seconds}}}\\.[0-9]{{{fraction}}} "]
    if opts.cpu:
        parts += [_WIDTH3, " "]
    parts += ["(?:", _TAG_ALT, ")  "]
    if opts.abi:
        parts += [_ABI, "  "]
    return "".join(parts)


GENERAL_GROUPS = ("pid", "tid", "comm", "ts", "cpu", "tag", "abi", "body")


def general_pattern(opts: KdumpOptions) -> str:
    """Any header of this layout (wider numbers, UNKNOWN(n) tags), with one capture
    group per name in GENERAL_GROUPS (empty groups where the layout has no field)."""
    tid = _ANY_TID + " " if opts.tid else "()"
    ts = "((?:" + _TS + " ){" + str(len(opts.timestamps)) + "})"
    cpu = "( *[0-9]+) " if opts.cpu else "()"
    abi = "(" + _ABI + ")  " if opts.abi else "()"
    return (
        "^ *([0-9]+) "
        + tid
        + "("
        + _ANY_COMM
        + ") "
        + ts
        + cpu
        + "("
        + _TAG_ALT
        + r"|UNKNOWN\([0-9]+\))  "
        + abi
        + "(.*)$"
    )


def dropped_pattern(opts: KdumpOptions) -> str:
    """`%6d [%6d ]%-8.*s Events dropped.` (spec §1.1): no type column, no timestamp."""
    tid = _ANY_TID + " " if opts.tid else "()"
    return "^ *([0-9]+) " + tid + "(" + _ANY_COMM + r") Events dropped\.$"


# Record bodies that kreplay decodes must have these shapes; anything else in a
# header line of that kind is reported as a parse error, not guessed at.
_NAME = r"(?:[A-Za-z_][A-Za-z0-9_.]*|\[[0-9]+\])(?:\[[0-9]+\])?"
BODY_SHAPES = {
    "CALL": "^" + _NAME + r"(?:\(.*\))?$",
    "RET": "^" + _NAME + " (?:-?[0-9]+(?:/0x[0-9a-f]+)?|0x[0-9a-f]+"
    "|-1 errno -?[0-9]+(?: .*)?|RESTART|JUSTRETURN)$",
    "NAMI": '^".*"$',
    "SCTL": '^".*"$',
    "GIO": "^fd -?[0-9]+ (?:read|wrote) [0-9]+ bytes?$",
    "PSIG": "^SIG(?:[A-Z0-9]+| [0-9]+) (?:SIG_DFL|SIG_IGN|caught handler=0x[0-9a-f]+"
    " mask=0x[0-9a-f]+)(?: code=.*)?$",
    "CSW": '^(?:stop|resume) (?:user|kernel)(?: ".*")?$',
    "PFLT": "^0x[0-9a-f]+ (?:(?:0x[0-9a-f]+|[0-9]+)(?:<[A-Z_|]*>)?|[A-Z_|]+)$",
    "PRET": "^(?:KERN_[A-Z_]+|<invalid=-?[0-9]+>)$",
}

# Lines without a header that continue the record before them (spec §1.4).
GIO_TEXT_LINE = '^(?:       "|\t)'
GIO_HEX_LINE = "^       0x[0-9a-f]{4,} "
STRU_ELEMENT_LINE = "^ {13}"


# ---------------------------------------------------------------------------- detection


def detect_options(lines: list[str]) -> KdumpOptions:
    """The layout that reads the most of these lines as headers.

    Ties go to the layout with more columns: an all-digit command name (`8`) can make
    a narrower layout match too, never a wider one that also matches the numbers."""
    candidates = [
        KdumpOptions(tid=tid, timestamps=ts, cpu=cpu, abi=abi)
        for tid in (True, False)
        for ts in ("TER", "TE", "T", "")
        for cpu in (True, False)
        for abi in (False, True)
    ]
    sample = [line for line in lines if line and line[0] in " 0123456789"]
    best, best_score = KdumpOptions(), (0, 0)
    for opts in candidates:
        pattern = re.compile(general_pattern(opts))
        matched = [m for m in map(pattern.match, sample) if m]
        implausible = sum(1 for m in matched if _TIME_LIKE.match(m.group(3).strip()))
        score = (len(matched) - implausible, len(opts.letters))
        if matched and score > best_score:
            best, best_score = _name_timestamps(opts, matched), score
    return best


# A command name that is really a timestamp column read by the wrong layout.
_TIME_LIKE = re.compile(r"-?[0-9]+\.[0-9]{6}(?:[0-9]{3})?$")


def _name_timestamps(opts: KdumpOptions, matches: list[re.Match]) -> KdumpOptions:
    """-T, -E and -R all print `sec.frac`; tell them apart by value: absolute times
    are large, relative ones can be negative, elapsed ones start near zero."""
    n = len(opts.timestamps)
    if n in (0, 3) or not matches:
        return opts
    columns = list(zip(*(m.group(4).split() for m in matches), strict=True))
    letters = []
    for values in columns:
        seconds = [float(v) for v in values]
        if seconds[0] >= 1e8 and "T" not in letters:
            letters.append("T")
        elif any(s < 0 for s in seconds):
            letters.append("R")
        else:
            letters.append("E" if "E" not in letters else "R")
    ordered = "".join(ch for ch in _TS_LETTERS if ch in letters)
    if len(ordered) != n:  # ambiguous: fall back to kdump's print order
        ordered = _TS_LETTERS[:n] if n < 3 else _TS_LETTERS
    return KdumpOptions(tid=opts.tid, timestamps=ordered, cpu=opts.cpu, abi=opts.abi)


def header_version(lines: list[str], opts: KdumpOptions) -> int | None:
    """ktrace record header version as the timestamps show it: v0 records carry
    microseconds, v1 records (FreeBSD 14+) nanoseconds (spec §1.1, §2.2)."""
    if not opts.timestamps:
        return None
    pattern = re.compile(general_pattern(opts))
    digits = set()
    for m in filter(None, map(pattern.match, lines)):
        digits.update(len(ts.split(".")[1]) for ts in m.group(4).split())
    if 9 in digits:
        return 1
    return 0 if 6 in digits else None


def detect_layout(lines: list[str], opts: KdumpOptions) -> Layout:
    """The most common width of each timestamp column among these lines."""
    if not opts.timestamps:
        return Layout(opts)
    pattern = re.compile(general_pattern(opts))
    counts: dict[tuple, int] = {}
    for m in filter(None, map(pattern.match, lines)):
        widths = tuple((len(ts.split(".")[0]), len(ts.split(".")[1])) for ts in m.group(4).split())
        if all(not ts.startswith("-") for ts in m.group(4).split()):
            counts[widths] = counts.get(widths, 0) + 1
    if not counts:
        return Layout(opts, tuple((1, 9) for _ in opts.timestamps))
    return Layout(opts, max(sorted(counts), key=counts.__getitem__))
