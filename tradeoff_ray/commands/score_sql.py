"""Placeholder until issue 3 lands."""
from tradeoff_ray.commands import not_built


def main(**_options) -> None:
    not_built("score-sql", 3)
