"""One module per CLI command; each exposes `main(**options) -> int | None`."""
from tradeoff_ray.errors import UserError


class NotBuiltYet(UserError):
    """A command whose stage has not landed yet."""


def not_built(command: str, issue: int) -> None:
    raise NotBuiltYet(f"`tradeoff-ray {command}` is not built yet (tracked in issue {issue})")
