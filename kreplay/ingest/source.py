"""Trace input: files, stdin and compressed files, hashed and made safe for the bulk reader.

The store identifies a trace by the sha256 of its decompressed bytes. The bulk reader
(DuckDB's CSV scanner) wants clean UTF-8 lines; kdump output is that, but a file can hold
bytes kdump never prints raw (binary garbage, NUL, control characters, invalid UTF-8,
CRLF endings from a paste, a line of megabytes). A plain, clean file is read in place;
anything else is copied once to a clean temporary file in which each bad line is replaced
by a printable rendering and reported as a parse error with its line number.
"""

import bz2
import codecs
import gzip
import hashlib
import lzma
import os
import re
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from kreplay.errors import TraceFormatError

BLOCK = 8 << 20
MAX_LINE = 1 << 20           # longer lines are reported, not parsed
HEAD_LINES = 2000            # lines used to detect kdump options

# Bytes kdump never prints raw: vis(3) escapes them in data dumps.
_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")
_COMPRESSIONS = (
    (b"\x1f\x8b", "gzip", gzip.GzipFile),
    (b"\xfd7zXZ\x00", "xz", lzma.LZMAFile),
    (b"BZh", "bzip2", bz2.BZ2File),
)


@dataclass
class TextSource:
    """A trace's text, ready for the bulk reader."""

    name: str                     # as the user named it (path or "-")
    read_path: str                # the file the bulk reader reads
    sha256: str
    nbytes: int                   # decompressed size
    compression: str | None
    head: list[str]               # first lines, for option detection
    binary_ktrace: bool = False   # the bytes look like a binary ktrace.out
    bad_lines: int = 0            # lines replaced in the clean copy


def default_trace_name(path: str) -> str:
    """`traces/storm.kdump.gz` -> `storm`: the file name without its extensions."""
    base = os.path.basename(path.rstrip("/")) or path
    return base.split(".", 1)[0] or base


def _open_decompressed(path: str) -> tuple[BinaryIO, str | None]:
    try:
        raw = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as e:
        raise TraceFormatError(f"cannot open: {e.strerror}", path=path) from None
    if path == "-":
        raw = _Peekable(raw)
    magic = raw.peek(6)[:6] if hasattr(raw, "peek") else b""
    for prefix, label, opener in _COMPRESSIONS:
        if magic.startswith(prefix):
            return opener(raw), label
    return raw, None


class _Peekable:
    """Minimal peek() for a pipe, so stdin can be sniffed for compression."""

    def __init__(self, f: BinaryIO):
        self._f, self._buf = f, b""

    def peek(self, n: int) -> bytes:
        while len(self._buf) < n:
            more = self._f.read(n - len(self._buf))
            if not more:
                break
            self._buf += more
        return self._buf

    def read(self, n: int = -1) -> bytes:
        buf, self._buf = self._buf, b""
        if n < 0:
            return buf + self._f.read()
        return buf + self._f.read(max(0, n - len(buf))) if len(buf) < n else buf

    def close(self) -> None:
        pass


def _blocks(f: BinaryIO, path: str, compression: str | None) -> Iterator[bytes]:
    try:
        while block := f.read(BLOCK):
            yield block
    except (OSError, EOFError, lzma.LZMAError, ValueError) as e:
        raise TraceFormatError(f"broken {compression or 'input'} data: {e}", path=path) from None


def looks_like_ktrace(head: bytes) -> bool:
    """The first bytes parse as a binary ktrace record header (spec §2.2)."""
    if len(head) < 56 or b"\x00" not in head[:64]:
        return False
    length, rtype = struct.unpack_from("<iH", head)
    return 0 <= length < (1 << 20) and 1 <= (rtype & 0x3FFF) <= 18


class _Scanner:
    """One pass over the blocks: hash, count, and tell whether the text is clean."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.nbytes = 0
        self.clean = True
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._line_len = 0  # length of the unfinished line at the end of the last block
        self.head = b""

    def feed(self, block: bytes) -> None:
        self.sha.update(block)
        self.nbytes += len(block)
        if len(self.head) < 256 << 10:
            self.head += block[: (256 << 10) - len(self.head)]
        if self.clean:
            self.clean = self._is_clean(block)

    def _is_clean(self, block: bytes) -> bool:
        first = block.find(b"\n")
        last = block.rfind(b"\n")
        if first < 0:
            self._line_len += len(block)
            return self._line_len <= MAX_LINE and self._text_ok(block)
        longest_crossing = self._line_len + first
        self._line_len = len(block) - last - 1
        return longest_crossing <= MAX_LINE and self._text_ok(block)

    def _text_ok(self, block: bytes) -> bool:
        if _CONTROL.search(block):
            return False
        try:
            self._utf8.decode(block)
        except UnicodeDecodeError:
            return False
        return True


def open_text(path: str, workdir: str) -> TextSource:
    """Hash the input and return where the bulk reader should read it."""
    f, compression = _open_decompressed(path)
    scan = _Scanner()
    spool = None
    if compression or path == "-":  # must be decompressed/saved once anyway
        spool = os.path.join(workdir, "input.kdump")
        with open(spool, "wb") as out:
            for block in _blocks(f, path, compression):
                scan.feed(block)
                out.write(block)
    else:
        for block in _blocks(f, path, compression):
            scan.feed(block)
    if path != "-":
        f.close()
    if scan.nbytes == 0:
        raise TraceFormatError("empty file: no kdump lines", path=path)
    source = TextSource(
        name=path,
        read_path=spool or path,
        sha256=scan.sha.hexdigest(),
        nbytes=scan.nbytes,
        compression=compression,
        head=_head_lines(scan.head),
        binary_ktrace=looks_like_ktrace(scan.head),
    )
    if not scan.clean:
        _write_clean_copy(source, os.path.join(workdir, "clean.kdump"))
    return source


def _head_lines(head: bytes) -> list[str]:
    text = head.decode("utf-8", "replace")
    return text.split("\n", HEAD_LINES)[:HEAD_LINES]


# A bad line is written as BAD_MARK + reason + BAD_MARK + printable text: a line that can
# match no kdump pattern, and that the parse SQL turns into a parse error with that reason.
BAD_MARK = "\x02"


def _write_clean_copy(source: TextSource, clean_path: str) -> None:
    """Rewrite the text with each bad line replaced by a printable rendering of it."""
    with open(source.read_path, "rb") as f, open(clean_path, "w", encoding="utf-8") as out:
        for raw in _lines(f):
            line, reason = _clean_line(raw)
            if reason:
                source.bad_lines += 1
                line = BAD_MARK + reason + BAD_MARK + line
            out.write(line)
            out.write("\n")
    source.read_path = clean_path


def _lines(f: BinaryIO) -> Iterator[bytes]:
    """Lines without their terminator; a line longer than MAX_LINE is cut there
    (the rest of it is skipped, not split into further lines)."""
    while True:
        line = f.readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            rest = f.readline()
            while rest and not rest.endswith(b"\n"):
                rest = f.readline()
            yield line  # over-long: _clean_line reports it
            continue
        yield line[:-1] if line.endswith(b"\n") else line


def _clean_line(raw: bytes) -> tuple[str, str | None]:
    if len(raw) > MAX_LINE:
        return _printable(raw[:200]) + "...", f"line longer than {MAX_LINE} bytes"
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _printable(raw), "not UTF-8 text (binary data?)"
    if _CONTROL.search(raw):
        return _printable(raw), "control characters kdump never prints (binary data?)"
    return text, None


def _printable(raw: bytes) -> str:
    text = raw.decode("utf-8", "backslashreplace")
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", text)
