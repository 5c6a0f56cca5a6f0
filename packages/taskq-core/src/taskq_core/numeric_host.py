"""How a resolver reads a host made of numbers: `2130706433`, `0x7f.1`, `127.1`, `0`.

getaddrinfo hands such a host to inet_aton, which accepts one to four parts,
each decimal, octal (a leading 0) or hexadecimal (0x), the last part filling
the remaining bytes. `ipaddress` reads only the dotted-quad form, so without
this the API would take `http://2130706433/` for a name while the worker
connects to 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import re

_PART = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")


def numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address inet_aton reads from `host`, or None when it is not such a number."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_PART.fullmatch(part) for part in parts):
        return None
    values = [_value(part) for part in parts]
    *leading, last = values
    # Every part but the last is one byte; the last fills the bytes that remain.
    if any(value > 0xFF for value in leading) or last >= 1 << (8 * (5 - len(values))):
        return None
    number = last
    for position, value in enumerate(leading):
        number |= value << (8 * (3 - position))
    return ipaddress.IPv4Address(number)


def _value(part: str) -> int:
    if part[:2] in ("0x", "0X"):
        return int(part[2:], 16)
    if len(part) > 1 and part[0] == "0":
        return int(part, 8)
    return int(part)
