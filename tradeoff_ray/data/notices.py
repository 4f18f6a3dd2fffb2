"""One-time messages from the data loaders: demo data in use, databases missing.

Loaders can run many times in one process (train, then eval, then every Tune trial); the user needs
each fact once, on stderr so command output on stdout stays clean.
"""
from __future__ import annotations

import sys

_seen: set[str] = set()


def notice(message: str) -> None:
    """Print `message` to stderr unless this process printed the same text before."""
    if message in _seen:
        return
    _seen.add(message)
    print(message, file=sys.stderr, flush=True)
