"""A reply's header block read into http.client's message without the email package's parser.

http.client hands every reply's header lines to email's feed parser, which is
built for MIME documents: ~20 µs per reply. A block made only of plain
`Name: value` lines, what servers send, is read here into the very message
that parser builds (same fields, payload and defects: tests/unit/test_header_lines.py
compares them) in ~4 µs; deliver() against a fast target took ~9% less CPU
(docs/benchmarks.md). Anything else (folded lines, odd names, a stray CR,
envelope lines, multipart or message content types) goes to the email parser
as before. http.client keeps everything else: the line and header-count
limits (`_read_headers`), framing, keep-alive.

`install()` is called by the worker's entry points only: it replaces the
module function http.client's responses call, for the whole process.
"""

from __future__ import annotations

import email.parser
import http.client
import re
from typing import Any

# The email parser's field name (printable ASCII but ':', at least one) and a
# value with no CR or LF, the only characters its line splitting breaks at
# (checked for every byte on 3.11-3.13 by the tests). Other lines are left to it.
_PLAIN_LINE = re.compile(r"([!-9;-~]+):([^\r\n]*)\r?\n")
_BLANK_LINES = (b"\r\n", b"\n")
# Content types whose body the email parser goes on to parse (parts, a nested
# message): their message carries more than fields, so they take its path.
_STRUCTURED = re.compile(r"multipart|message", re.IGNORECASE)


def parse_headers(fp: Any, _class: type[http.client.HTTPMessage] = http.client.HTTPMessage) -> Any:
    """http.client.parse_headers, with plain header blocks read without the email parser."""
    lines: list[bytes] = http.client._read_headers(fp)  # type: ignore[attr-defined] # stdlib's limits
    message = plain_message(lines) if _class is http.client.HTTPMessage else None
    if message is None:
        text = b"".join(lines).decode("iso-8859-1")
        message = email.parser.Parser(_class=_class).parsestr(text)
    return message


def plain_message(lines: list[bytes]) -> http.client.HTTPMessage | None:
    """The message the email parser builds from `lines`, or None when they are not all plain."""
    if not lines or lines[-1] not in _BLANK_LINES:
        return None  # the connection closed within the headers
    fields = []
    for line in lines[:-1]:
        plain = _PLAIN_LINE.fullmatch(line.decode("iso-8859-1"))
        if plain is None:
            return None
        name, value = plain.groups()
        if name.lower() == "content-type" and _STRUCTURED.search(value):
            return None
        # As email's Compat32 policy stores a field: leading blanks off, the rest kept.
        fields.append((name, value.lstrip(" \t")))
    message = http.client.HTTPMessage()
    message._headers = fields  # type: ignore[attr-defined] # the list Message keeps its fields in
    message.set_payload("")  # the parser's payload for a block that ends at its blank line
    return message


def install() -> None:
    """Make http.client's responses in this process use parse_headers above."""
    http.client.parse_headers = parse_headers  # type: ignore[assignment] # typeshed overloads _class
