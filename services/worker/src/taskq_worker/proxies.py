"""Proxies from the environment, read once: HTTP(S)_PROXY / ALL_PROXY and NO_PROXY.

The worker's session has trust_env off (the per-call environment lookups cost
about a third of a call), so requests applies neither the proxies nor
NO_PROXY by itself: the proxies are read here once, and the session asks
`bypasses` per call, answered once per origin.
"""

from __future__ import annotations

import functools
import urllib.request
from urllib.parse import urlsplit

from requests.utils import should_bypass_proxies


def environment_proxies() -> tuple[dict[str, str], str | None]:
    """The proxies by scheme, and NO_PROXY (None when unset).

    urllib files NO_PROXY under the key "no", which requests would never read.
    """
    proxies = urllib.request.getproxies()
    no_proxy = proxies.pop("no", None)
    return proxies, no_proxy


def bypasses(url: str, no_proxy: str) -> bool:
    """Whether NO_PROXY sends `url` directly, by requests' own rule."""
    parts = urlsplit(url)
    return _origin_bypasses(parts.scheme, parts.netloc, no_proxy)


@functools.lru_cache(maxsize=1024)
def _origin_bypasses(scheme: str, netloc: str, no_proxy: str) -> bool:
    return bool(should_bypass_proxies(f"{scheme}://{netloc}/", no_proxy=no_proxy))
