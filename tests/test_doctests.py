"""The examples in the docstrings run (as `make test` runs everything): every module of the
package and of the report that has one, so an example that no longer holds fails here."""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # the search modules import ray

import analysis  # noqa: E402
import tune_vqvae  # noqa: E402


def _modules() -> list[str]:
    names = []
    for package in (tune_vqvae, analysis):
        names.append(package.__name__)
        names += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
                  if not m.name.endswith("__main__")]
    return names


def _with_examples(name: str) -> bool:
    return any(t.examples for t in doctest.DocTestFinder().find(importlib.import_module(name)))


MODULES = [m for m in _modules() if _with_examples(m)]


def test_the_modules_with_examples_are_found():
    for name in ("tune_vqvae.vocab", "tune_vqvae.objectives", "tune_vqvae.constraints",
                 "tune_vqvae.stats.intervals", "tune_vqvae.stats.surrogate", "tune_vqvae.stats.runs",
                 "tune_vqvae.metrics.kid", "tune_vqvae.metrics.swd"):
        assert name in MODULES, name


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    failed, attempted = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert attempted and not failed, f"{name}: {failed} of {attempted} examples failed (output above)"
