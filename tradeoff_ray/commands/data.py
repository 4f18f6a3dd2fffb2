"""Placeholder until issue 2 lands."""
from tradeoff_ray.commands import not_built


def main(**_options) -> None:
    not_built("data", 2)
