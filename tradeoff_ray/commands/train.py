"""Placeholder until issue 5 lands."""
from tradeoff_ray.commands import not_built


def main(**_options) -> None:
    not_built("train", 5)
