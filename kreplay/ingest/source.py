"""Trace input: files, stdin and compressed files, hashed and cut into clean chunks.

The store identifies a trace by the sha256 of its decompressed bytes. The parse reads
clean UTF-8 lines in chunks of whole lines, in memory, each chunk knowing its first line
number (kdump_stream.py parses them on two cores). A chunk always starts with a line that
cannot continue the record before it, so continuation lines never cross a chunk boundary.

kdump output is clean text, but a file can hold bytes kdump never prints raw (binary
garbage, NUL, control characters, invalid UTF-8, CRLF endings from a paste, a line of
megabytes). Such a line is written in a printable rendering behind BAD_MARK and the reason,
and the parse reports it as a parse error with its line number; nothing is dropped.
"""

import bz2
import gzip
import hashlib
import lzma
import os
import sys
import zlib
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from kreplay.errors import TraceFormatError

BLOCK = 8 << 20
CHUNK = 4 << 20  # target size of one chunk (kdump_parse.py parses one at a time per thread)
MAX_LINE = 1 << 20  # longer lines are reported, not parsed
HEAD_BYTES = 256 << 10  # the beginning of the text, for format and option detection
HEAD_LINES = 2000

# A bad line is written as BAD_MARK + reason + BAD_MARK + printable text: a line that can
# match no kdump pattern, and that the parse turns into a parse error with that reason.
BAD_MARK = "\x02"

# Bytes kdump prints raw: printable ASCII, TAB, newline, and UTF-8 (command names).
_TEXT_BYTES = bytes(range(0x20, 0x7F)) + b"\t\n" + bytes(range(0x80, 0x100))
_COMPRESSIONS = (
    (b"\x1f\x8b", "gzip", lambda raw: gzip.GzipFile(fileobj=raw)),
    (b"\xfd7zXZ\x00", "xz", lzma.LZMAFile),
    (b"BZh", "bzip2", bz2.BZ2File),
)


def default_trace_name(path: str) -> str:
    """`traces/storm.kdump.gz` -> `storm`: the file name without its extensions."""
    base = os.path.basename(path.rstrip("/")) or path
    return base.split(".", 1)[0] or base


class Input:
    """An opened trace: the decompressed stream and its first block, read once to tell
    kdump text from a binary ktrace.out before the rest is read one way or the other."""

    def __init__(self, path: str):
        self.path = path
        self._raw, self._stream, self.compression = _open_decompressed(path)
        self._blocks = _blocks(self._stream, path, self.compression)
        try:
            self.first = self._head()
        except BaseException:
            self.close()
            raise

    def _head(self) -> bytes:
        """At least HEAD_BYTES of the input, or all of it (a pipe reads in small pieces)."""
        head = b""
        for block in self._blocks:
            head += block
            if len(head) >= HEAD_BYTES:
                break
        return head

    def size_hint(self) -> int:
        """The input's size if it is a plain file (else 0)."""
        if self.path == "-" or self.compression:
            return 0
        try:
            return os.fstat(self._raw.fileno()).st_size
        except (OSError, AttributeError):
            return 0

    def blocks(self) -> Iterator[bytes]:
        """Every block of the decompressed input, the first one included."""
        if self.first:
            yield self.first
        yield from self._blocks

    def fill(self, view: memoryview) -> int:
        """Fill view with the input's next bytes; how many (fewer than it holds only at the
        end of the input). A plain file's bytes go straight from the file into view."""
        n = min(len(self.first), len(view))
        view[:n], self.first = self.first[:n], self.first[n:]
        try:
            while n < len(view) and (got := self._stream.readinto(view[n:])):
                n += got
        except _BROKEN as e:
            raise _broken(self.path, self.compression, e) from None
        return n

    def close(self) -> None:
        if self.path != "-":
            self._stream.close()
            self._raw.close()  # the decompressors do not own the file they read

    def __enter__(self) -> "Input":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def file_sha256(path: str) -> str:
    """The sha256 of a plain file's bytes."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as e:
        raise TraceFormatError(f"cannot read: {e.strerror}", path=path) from None


def _open_decompressed(path: str) -> tuple[BinaryIO, BinaryIO, str | None]:
    """(the raw input, the decompressed stream to read, the compression found)."""
    try:
        raw = _Peekable(sys.stdin.buffer) if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as e:
        raise TraceFormatError(f"cannot open: {e.strerror}", path=path) from None
    magic = raw.peek(6)[:6]
    for prefix, label, opener in _COMPRESSIONS:
        if magic.startswith(prefix):
            return raw, opener(raw), label
    return raw, raw, None


class _Peekable:
    """peek() for a pipe, so stdin can be sniffed for compression."""

    def __init__(self, f: BinaryIO):
        self._f, self._buf = f, b""

    def peek(self, n: int) -> bytes:
        while len(self._buf) < n and (more := self._f.read(n - len(self._buf))):
            self._buf += more
        return self._buf

    def readinto(self, view: memoryview) -> int:
        if not self._buf:
            return self._f.readinto(view)
        n = min(len(self._buf), len(view))
        view[:n], self._buf = self._buf[:n], self._buf[n:]
        return n

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            buf, self._buf = self._buf, b""
            return buf + self._f.read()
        if self._buf:
            buf, self._buf = self._buf[:n], self._buf[n:]
            return buf
        return self._f.read(n)

    def close(self) -> None:
        pass


_BROKEN = (OSError, EOFError, lzma.LZMAError, ValueError, zlib.error)


def _broken(path: str, compression: str | None, e: Exception) -> TraceFormatError:
    return TraceFormatError(f"broken {compression or 'input'} data: {e}", path=path)


def _blocks(f: BinaryIO, path: str, compression: str | None) -> Iterator[bytes]:
    try:
        while block := f.read(BLOCK):
            yield block
    except _BROKEN as e:
        raise _broken(path, compression, e) from None


class _ChunkCutter:
    """Whole lines into chunks of about `target` bytes, bad lines made printable."""

    def __init__(self, target: int):
        self._target = target
        self._carry = b""  # an unfinished line from the previous block
        self._skipping = False  # dropping the rest of an over-long line
        self._parts: list[bytes] = []
        self._ready: list[tuple[bytes, int, int]] = []
        self._size = self._lines = 0
        self._next_line = 1

    def feed(self, block: bytes) -> Iterator[tuple[bytes, int, int]]:
        if self._skipping:
            newline = block.find(b"\n")
            if newline < 0:
                return
            block, self._skipping = block[newline + 1 :], False
        data = self._carry + block
        end = data.rfind(b"\n") + 1
        self._carry = data[end:]
        if end:
            self._write(data[:end])
        if len(self._carry) > MAX_LINE:  # no newline in sight: report the line, skip the rest
            self._write(self._carry + b"\n")
            self._carry, self._skipping = b"", True
        yield from self._take()

    def finish(self) -> Iterator[tuple[bytes, int, int]]:
        if self._carry:  # a last line without its newline still counts
            self._write(self._carry + b"\n")
            self._carry = b""
        self._close_chunk()
        yield from self._take()

    def _take(self) -> Iterator[tuple[bytes, int, int]]:
        ready, self._ready = self._ready, []
        yield from ready

    def _write(self, lines: bytes) -> None:
        # A block holds many chunks' worth of lines: cut it at line ends near the target
        # size first, so that a chunk's parse (and its memory) stays small.
        start = 0
        while len(lines) - start > self._target:
            cut = lines.find(b"\n", start + self._target // 2) + 1
            if cut <= 0 or cut >= len(lines):
                break
            self._add(lines[start:cut])
            start = cut
        self._add(lines[start:] if start else lines)

    def _add(self, lines: bytes) -> None:
        if self._parts and self._size >= self._target and _starts_record(lines):
            self._close_chunk()
        if not _clean(lines):
            lines = self._cleaned(lines)
        self._parts.append(lines)
        self._size += len(lines)
        self._lines += lines.count(b"\n")

    def _close_chunk(self) -> None:
        if not self._parts:
            return
        self._ready.append((b"".join(self._parts), self._next_line, self._lines))
        self._next_line += self._lines
        self._parts, self._size, self._lines = [], 0, 0

    def _cleaned(self, lines: bytes) -> bytes:
        out = []
        for raw in lines[:-1].split(b"\n"):
            text, reason = _clean_line(raw)
            if reason:
                text = BAD_MARK + reason + BAD_MARK + text
            out.append(text)
        return ("\n".join(out) + "\n").encode()


def _starts_record(lines: bytes) -> bool:
    """The first line cannot continue the record before it (spec §1.4)."""
    return not lines.startswith((b"\t", b"       ", b"\n"))


def _clean(data: bytes) -> bool:
    if data.translate(None, _TEXT_BYTES):
        return False
    if data.isascii():
        return _longest_line_ok(data)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return _longest_line_ok(data)


def _longest_line_ok(data: bytes) -> bool:
    """Cheaply rule out lines longer than MAX_LINE: such a line covers a whole aligned
    window of MAX_LINE / 2 bytes, so a window without a newline sends the data to the
    exact per-line check of _clean_line (shorter lines there pass unchanged)."""
    step = MAX_LINE // 2
    return all(data.find(b"\n", i, i + step) >= 0 for i in range(0, len(data) - step, step))


def _clean_line(raw: bytes) -> tuple[str, str | None]:
    if len(raw) > MAX_LINE:
        return _printable(raw[:200]) + "...", f"line longer than {MAX_LINE} bytes"
    if raw.endswith(b"\r") and raw.count(b"\r") == 1:
        raw = raw[:-1]  # a CRLF line ending from a paste
    if raw.translate(None, _TEXT_BYTES):
        return _printable(raw), "control characters that kdump never prints (binary data?)"
    # Bytes that are not UTF-8 (a thread name cut by the kernel inside a multi-byte
    # character, a Latin-1 file name) stay readable and lossless as \xNN; the line is
    # still parsed, and reported only if it is no kdump line.
    return raw.decode("utf-8", "backslashreplace"), None


def _printable(raw: bytes) -> str:
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(ch if ch >= " " or ch == "\t" else f"\\x{ord(ch):02x}" for ch in text)


class TextStream:
    """The input as clean chunks of whole lines, in memory (iterate it once); its sha256,
    size and head are known once the iteration ends (the head from the first block on)."""

    def __init__(self, source: Input, chunk: int = CHUNK):
        self.source, self.chunk = source, chunk
        self.sha256 = ""
        self.nbytes = 0
        self.head = _head_lines(source.first)

    def __iter__(self) -> Iterator[tuple[bytes, int, int]]:
        """(bytes of whole clean lines, 1-based number of its first line, lines)."""
        sha = hashlib.sha256()
        cutter = _ChunkCutter(self.chunk)
        for block in self.source.blocks():
            sha.update(block)
            self.nbytes += len(block)
            yield from cutter.feed(block)
        yield from cutter.finish()
        if self.nbytes == 0:
            raise TraceFormatError("empty file: no kdump lines", path=self.source.path)
        self.sha256 = sha.hexdigest()


def _head_lines(first: bytes) -> list[str]:
    text = first[:HEAD_BYTES].decode("utf-8", "replace")
    return text.split("\n", HEAD_LINES)[:HEAD_LINES]


class BinaryStream:
    """A binary input a window at a time, hashed as it is read; its sha256 and size are
    known after the last window. A window is one buffer, reused: the bytes of the window
    before that its reader did not use (a record cut by that window's end, at most `keep`
    bytes), then up to `window` bytes more, then `pad` zero bytes (so that a reader can take
    fixed-size slices at any record without running off)."""

    def __init__(self, source: Input, window: int, keep: int, pad: int):
        self.source, self.window, self.keep, self.pad = source, window, keep, pad
        # numpy asks for huge pages for it: the TLB misses of reading it out of order are cheap
        self.buf = np.zeros(keep + window + pad, dtype=np.uint8)
        self.base = 0  # the file offset of buf[0]
        self.nbytes = 0  # the window's bytes in buf (before the padding)
        self.last = False  # the window ends at the end of the input
        self.sha256, self.size = "", 0
        self._sha = hashlib.sha256()

    def next(self, used: int) -> bool:
        """Move on to the next window, keeping the bytes from `used` on of this one; False
        after the last window (sha256 and size are set then)."""
        if self.last:
            self.sha256, self.size = self._sha.hexdigest(), self.base + self.nbytes
            return False
        buf, kept = self.buf, self.nbytes - used
        if not 0 <= kept <= self.keep:
            raise ValueError(f"{kept} bytes kept from a window (at most {self.keep})")
        buf[:kept] = buf[used : self.nbytes].copy()
        self.base += used
        view = memoryview(buf)[kept : kept + self.window]
        n = self.source.fill(view)
        self._sha.update(view[:n])
        self.nbytes, self.last = kept + n, n < self.window
        buf[self.nbytes : self.nbytes + self.pad] = 0
        if self.base + self.nbytes == 0:
            raise TraceFormatError("empty file: no ktrace records", path=self.source.path)
        return True
