"""A captured command output as numbered lines: decoded, and its last line checked."""

from kreplay.errors import SnapshotFormatError, TruncatedCapture

PREVIEW = 60  # characters of a bad line quoted in its error


def preview(line: str) -> str:
    """A bad line as an error quotes it: repr, cut to PREVIEW characters."""
    return repr(line if len(line) <= PREVIEW else line[:PREVIEW] + "...")


def numbered_lines(data: bytes, path: str) -> list[str]:
    """The lines of one captured output, without their newlines (line n is lines[n - 1]).

    vmstat and sysctl end every line they print with a newline, so bytes after the last
    newline are a line cut short (a copy that stopped mid-line): TruncatedCapture names it,
    whatever it looks like, because a cut row can still look whole ("1" of "17616").
    Bytes that are not UTF-8, and CRLF endings (a paste, not the command's output), are
    errors of their line."""
    *whole, cut = data.split(b"\n")
    lines = [_decoded(raw, path, number) for number, raw in enumerate(whole, start=1)]
    if cut:
        text = cut.decode("utf-8", errors="replace")
        raise TruncatedCapture(
            f"the last line is cut short (no newline after it): {preview(text)}; "
            "a capture ends with a newline",
            path=path,
            line=len(whole) + 1,
        )
    return lines


def _decoded(raw: bytes, path: str, number: int) -> str:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SnapshotFormatError(
            f"not UTF-8 text (byte {e.start + 1} of the line)", path=path, line=number
        ) from None
    if line.endswith("\r"):
        raise SnapshotFormatError(
            "a CRLF line ending: not the command's output as it printed it", path=path, line=number
        )
    return line
