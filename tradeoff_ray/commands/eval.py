"""Placeholder until issue 4 lands."""
from tradeoff_ray.commands import not_built


def main(**_options) -> None:
    not_built("eval", 4)
