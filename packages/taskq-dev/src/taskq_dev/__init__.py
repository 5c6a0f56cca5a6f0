"""Development tooling of taskq: installed by `make install`, never shipped in an image.

Neither the core nor the services may import it (an import-linter contract).
"""
