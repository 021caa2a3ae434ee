"""A user's own loss without editing the package: `module:factory`, or a name registered by an
installed package in the entry-point group `tune_vqvae.losses`.

A factory takes no arguments and returns a `tune_vqvae.losses.Metric` (name, similarity or
distance, best value, input range, build). The metric is checked against the convention
(`metric.check_convention`) when it is loaded; every process that trains with it (each Ray
worker) loads it again by the same spec, so the plugin must be importable there too.

    # pyproject.toml of a plugin package
    [project.entry-points."tune_vqvae.losses"]
    charbonnier = "charbonnier:factory"
"""

from __future__ import annotations

import functools
import importlib
from importlib.metadata import entry_points

from ..errors import UserError
from .metric import Metric, check_convention

ENTRY_POINT_GROUP = "tune_vqvae.losses"


def is_spec(name: str) -> bool:
    """Whether a loss name is a `module:factory` spec (built-in and entry-point names have no colon)."""
    return ":" in name


def registered_names() -> list[str]:
    """Loss names installed packages register in the entry-point group."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def _import_factory(spec: str):
    module_name, _, attr = spec.partition(":")
    if not attr.isidentifier() or not all(p.isidentifier() for p in module_name.split(".")):
        raise UserError(f"loss plugin {spec!r}: not a 'module:factory' spec, "
                        f"e.g. examples.charbonnier:factory")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - the plugin's import failing is bad input, one line
        raise UserError(f"loss plugin {spec!r}: cannot import module {module_name!r} "
                        f"({type(e).__name__}: {e}); install it, or run from the directory that "
                        f"holds it (on a cluster: every node, see README 'Plugins')") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UserError(f"loss plugin {spec!r}: module {module_name!r} has no callable {attr!r}")
    return factory


def _call_factory(factory, where: str) -> Metric:
    try:
        metric = factory()
    except Exception as e:  # noqa: BLE001 - the plugin's own failure, one line
        raise UserError(f"{where}: its factory failed ({type(e).__name__}: {e})") from None
    if not isinstance(metric, Metric):
        raise UserError(f"{where}: its factory must return a tune_vqvae.losses.Metric, "
                        f"got {type(metric).__name__}")
    check_convention(metric, where)
    return metric


@functools.cache  # successes only (an exception is not cached): each process checks once
def load_plugin(name: str) -> Metric | None:
    """The checked Metric of a `module:factory` spec or of an entry-point name (None: no
    such entry point); UserError if it cannot be imported or breaks the convention."""
    if is_spec(name):
        return _call_factory(_import_factory(name), f"loss plugin {name!r}")
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        return None
    where = f"loss plugin {name!r} ({found[0].value}, entry point {ENTRY_POINT_GROUP})"
    try:
        factory = found[0].load()
    except Exception as e:  # noqa: BLE001 - the plugin's import failing is bad input, one line
        raise UserError(f"{where}: cannot import it ({type(e).__name__}: {e})") from None
    metric = _call_factory(factory, where)
    if metric.name != name:
        raise UserError(f"{where}: declares name {metric.name!r}; register it under that name")
    return metric
