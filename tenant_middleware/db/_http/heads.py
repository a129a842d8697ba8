"""HTTP/1.1 heads: a request's, encoded once and checked as h11 would, and the common answer's,
parsed without h11 (`_http.wire` hands every other answer to h11).

The common answer is what sqld and Turso send: `HTTP/1.1`, a final status, well-formed header
lines and one `Content-Length`. Its header lines are checked by one regular expression, the
framing headers found by scanning, and the rest decoded only when read (a 200's never are).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from tenant_middleware.db._http.transport import TransportError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

MAX_HEAD = 65536  # the longest answer head read before giving up

# RFC 9110 tokens and field values as h11 checks them: visible ASCII with inner spaces and
# tabs in what we send; answers may carry obs-text too (sqld's `server-timing` has a UTF-8 "µs").
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(rb"(?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?")
_ANSWER_CHAR = rb"[\x21-\x7e\x80-\xff]"
_ANSWER_LINE = rb"%s:[ \t]*(?:%s+(?:[ \t]+%s+)*)?[ \t]*" % (
    _TOKEN.pattern,
    _ANSWER_CHAR,
    _ANSWER_CHAR,
)
# An answer's header lines (after the status line), checked in one match.
_HEADER_BLOCK = re.compile(rb"(?:%s(?:\r\n%s)*)?" % (_ANSWER_LINE, _ANSWER_LINE))
STATUS_PREFIX = b"HTTP/1.1 "
_NO_BODY = frozenset({204, 304})


class RequestHead(NamedTuple):
    """A POST's head without its `Content-Length`: the bytes before it and after it."""

    before: bytes
    after: bytes

    def request(self, body: bytes) -> bytes:
        """The whole request, ready for one write."""
        return b"%sContent-Length: %d\r\n%s%s" % (self.before, len(body), self.after, body)


def request_head(target: str, host: str, headers: Sequence[tuple[str, str]]) -> RequestHead:
    """Encode and check a POST's head; `TransportError` when a header is not valid HTTP.

    The message never quotes the value: the offending header may be the token (a secret read
    from a file with its trailing newline).
    """
    lines = [f"{name}: {value}\r\n" for name, value in headers]
    try:
        encoded = [(name.encode("ascii"), value.encode("ascii")) for name, value in headers]
        encoded.append((b"Host", host.encode("ascii")))
    except UnicodeEncodeError:
        encoded = [(b"", b"")]
    if not all(_TOKEN.fullmatch(name) and _FIELD_VALUE.fullmatch(value) for name, value in encoded):
        raise TransportError(
            "a request header is not valid HTTP (a token with a newline or space?)"
        )
    return RequestHead(
        f"POST {target} HTTP/1.1\r\nHost: {host}\r\n".encode("ascii"),
        "".join(lines).encode("ascii") + b"\r\n",
    )


class Head(NamedTuple):
    status: int
    reason: str
    headers: Mapping[str, str]
    length: int
    keep_alive: bool


class AnswerHeaders(Mapping[str, str]):
    """An answer's headers by lower-case name (repeated ones joined with ", "), decoded on
    first use: a 200's are seldom read, so the common answer pays only for a scan."""

    __slots__ = ("_block", "_parsed")

    def __init__(self, block: bytes) -> None:
        self._block = block  # the header lines, already checked by `_HEADER_BLOCK`
        self._parsed: dict[str, str] | None = None

    def _fields(self) -> dict[str, str]:
        if self._parsed is None:
            fields: dict[str, str] = {}
            for line in self._block.split(b"\r\n") if self._block else ():
                name, _, value = line.partition(b":")
                key, text = name.decode("ascii").lower(), value.strip(b" \t").decode("latin-1")
                fields[key] = f"{fields[key]}, {text}" if key in fields else text
            self._parsed = fields
        return self._parsed

    def __getitem__(self, name: str) -> str:
        return self._fields()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields())

    def __len__(self) -> int:
        return len(self._fields())

    def __repr__(self) -> str:
        return f"AnswerHeaders({self._fields()!r})"


def parse_head(raw: bytes) -> Head | None:
    """The head of a plain `Content-Length` answer; None for anything h11 should parse."""
    status_line, _, block = raw.partition(b"\r\n")
    code = status_line[9:12]
    if (
        not status_line.startswith(STATUS_PREFIX)
        or len(code) != 3
        or not code.isdigit()
        or status_line[12:13] not in (b"", b" ")
        or not _HEADER_BLOCK.fullmatch(block)  # folded, malformed or binary: h11 says how
    ):
        return None
    status = int(code)
    if status < 200:  # 1xx: informational, the answer follows
        return None
    lower = b"\n" + block.lower()  # each line starts after a "\n"
    if b"\ntransfer-encoding:" in lower:
        return None
    lengths = _values(lower, b"\ncontent-length:")
    if status in _NO_BODY:
        length = 0
    elif len(lengths) == 1 and lengths[0].isdigit():
        length = int(lengths[0])
    else:
        return None  # none (the body ends with the connection), several, or not a number
    keep_alive = not any(
        b"close" in value.replace(b" ", b"").split(b",")
        for value in _values(lower, b"\nconnection:")
    )
    reason = status_line[13:].decode("latin-1")
    return Head(status, reason, AnswerHeaders(block), length, keep_alive)


def _values(lower: bytes, start: bytes) -> list[bytes]:
    """The values of the header lines that begin with `start` ("\\nname:")."""
    values = []
    found = lower.find(start)
    while found >= 0:
        begin = found + len(start)
        end = lower.find(b"\r", begin)
        values.append(lower[begin : end if end >= 0 else len(lower)].strip(b" \t"))
        found = lower.find(start, begin)
    return values
