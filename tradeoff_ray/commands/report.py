"""Placeholder until issue 6 lands."""
from tradeoff_ray.commands import not_built


def main(**_options) -> None:
    not_built("report", 6)
