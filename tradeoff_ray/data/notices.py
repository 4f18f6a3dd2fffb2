"""One-time messages from the data loaders: demo data in use, databases missing.

Loaders can run many times in one process (train, then eval, then every Tune trial); the user needs
each fact once, on stderr so command output on stdout stays clean.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Iterator

_seen: set[str] = set()
_held: list[str] | None = None


def notice(message: str) -> None:
    """Print `message` to stderr unless this process printed the same text before."""
    if message in _seen:
        return
    _seen.add(message)
    _emit(message)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Notices raised inside the block are printed when it ends (so a command's header line comes first)."""
    global _held
    outer, _held = _held, []
    try:
        yield
    finally:
        messages, _held = _held, outer
        for message in messages:
            _emit(message)


def _emit(message: str) -> None:
    if _held is not None:
        _held.append(message)
    else:
        print(message, file=sys.stderr, flush=True)
