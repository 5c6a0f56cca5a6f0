"""Entry point of `make soak` (python -m tests.soak)."""

from __future__ import annotations

from tests.soak.run import main

if __name__ == "__main__":
    raise SystemExit(main())
