"""One Litestar Controller per resource."""

from __future__ import annotations
