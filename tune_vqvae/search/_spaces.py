"""Search-space files (search_spaces/*.yaml), validated on load; errors name the file and key.

    losses:   [gmsd]                      losses the file applies to (required)
    w:        {low: 0.001, high: 10, log: true}   the weight's range (required unless grid)
    with_mse: [true, false]               the categorical: mse + w * L, or L alone
    points:   [{with_mse: true, w: 1.0}, {with_mse: false}, ...]  evaluated first
    grid:     false                       true: evaluate exactly `points`, no sampling

A joint loss (`losses: [ssim+gmsd]`, mse + w1*ssim + w2*gmsd) searches one weight per part,
each over the `w` range; it always trains with MSE (`with_mse: [true]`), and a point gives
one weight per part, `{with_mse: true, w: [0.5, 0.5]}`, stored as the Optuna parameters
`{"with_mse": True, "w1": 0.5, "w2": 0.5}` (vocab.weight_keys). Every loss of a file has as
many parts. A joint loss without a file gets `joint_default_space`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import UserError
from ..losses import find_metrics
from ..vocab import (
    DEFAULT_W_BOUNDS,
    SPACES_DIR,
    config_weights,
    loss_parts,
    paper_points,
    paper_weights,
    weight_keys,
)

SPACE_KEYS = {"losses", "w", "with_mse", "points", "grid"}
W_KEYS = {"low", "high", "log"}
POINT_KEYS = {"with_mse", "w"}


@dataclass
class SearchSpace:
    path: str
    losses: list[str]
    low: float | None = None
    high: float | None = None
    log: bool = True
    with_mse: list[bool] = field(default_factory=lambda: [True, False])
    points: list[dict] = field(default_factory=list)
    grid: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        """The weight parameters: ("w",), or a joint loss's ("w1", "w2")."""
        return weight_keys(self.losses[0])

    @property
    def joint(self) -> bool:
        return len(self.keys) > 1

    def bounds(self) -> tuple[float, float]:
        """Every weight's (low, high): the file's range, else vocab.DEFAULT_W_BOUNDS (a grid
        file need not give one). The one source of the bounds: Optuna's space, the answer's
        surrogate and search.json (which the report reads) all take them from here."""
        low, high = DEFAULT_W_BOUNDS
        return (self.low if self.low is not None else low, self.high if self.high is not None else high)

    def is_config_point(self, config: dict) -> bool:
        """`is_point` of a trial config (its weights through vocab.config_weights)."""
        with_mse, w = config_weights(config)
        return self.is_point(with_mse, w)

    def is_point(self, with_mse: bool, w: float | tuple | None) -> bool:
        """Whether (with_mse, w) is one of the points evaluated first (the paper's grid; a
        joint loss's reference points, w its weights' tuple)."""
        if self.joint:
            return w is not None and not isinstance(w, (int, float)) and any(
                all(math.isclose(p[k], v, rel_tol=1e-9) for k, v in zip(self.keys, w))
                for p in self.points)
        for p in self.points:
            if bool(p["with_mse"]) != bool(with_mse):
                continue
            if not with_mse or (w is not None and math.isclose(p["w"], w, rel_tol=1e-9)):
                return True
        return False


def _space_error(path, key: str, what: str) -> UserError:
    return UserError(f"search space {path}: key {key!r}: {what}")


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as e:
        raise UserError(f"cannot read search space {path} ({e.strerror}); check --space") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.constructor.ConstructorError as e:  # well-formed, but a tag safe_load refuses
        at = f" at line {e.problem_mark.line + 1}" if e.problem_mark else ""
        raise UserError(f"search space {path}{at}: YAML tags such as !!python/object are not "
                        f"allowed (a search space holds plain numbers, lists and mappings); "
                        f"remove the tag") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}" if where else ""
        raise UserError(f"search space {path} is not valid YAML{at}; fix the syntax") from None
    if not isinstance(raw, dict):
        raise UserError(f"search space {path} must be a mapping of {', '.join(sorted(SPACE_KEYS))}")
    unknown = sorted(set(raw) - SPACE_KEYS)
    if unknown:
        raise _space_error(path, unknown[0], f"unknown key; valid keys: {', '.join(sorted(SPACE_KEYS))}")
    return raw


def _is_number(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def _parse_w(path: Path, w, space: SearchSpace) -> None:
    """The `w: {low, high, log}` range, into space.low/high/log."""
    if not isinstance(w, dict):
        raise _space_error(path, "w", "must be a mapping {low: ..., high: ..., log: true}")
    bad = sorted(set(w) - W_KEYS)
    if bad:
        raise _space_error(path, f"w.{bad[0]}", f"unknown key; valid keys: {', '.join(sorted(W_KEYS))}")
    for key in ("low", "high"):
        if not _is_number(w.get(key)):
            raise _space_error(path, f"w.{key}", f"must be a finite number, got {w.get(key)!r}")
    log = w.get("log", True)
    if not isinstance(log, bool):
        raise _space_error(path, "w.log", f"must be true or false, got {log!r}")
    low, high = float(w["low"]), float(w["high"])
    if low >= high:
        raise _space_error(path, "w", f"low ({low:g}) must be < high ({high:g})")
    if low <= 0:
        raise _space_error(path, "w.low", f"must be > 0 (the loss weight is positive), got {low:g}")
    space.low, space.high, space.log = low, high, log


def _parse_point(path: Path, key: str, p, space: SearchSpace) -> dict:
    """One `points` entry: {with_mse: true, w: 0.5} or {with_mse: false}."""
    if not isinstance(p, dict):
        raise _space_error(path, key, "must be a mapping {with_mse: true, w: 0.5} or {with_mse: false}")
    bad = sorted(set(p) - POINT_KEYS)
    if bad:
        raise _space_error(path, f"{key}.{bad[0]}", "unknown key; valid keys: with_mse, w")
    if not isinstance(p.get("with_mse"), bool):
        raise _space_error(path, f"{key}.with_mse", "must be true or false")
    if p["with_mse"] not in space.with_mse:
        raise _space_error(path, f"{key}.with_mse", f"{p['with_mse']} is not among with_mse {space.with_mse}")
    if not p["with_mse"]:
        if "w" in p:
            raise _space_error(path, f"{key}.w", "a no-MSE point has no weight; remove w")
        return {"with_mse": False}
    v = p.get("w")
    if space.joint:
        return _parse_joint_point(path, key, v, space)
    if not _is_number(v) or not v > 0:
        raise _space_error(path, f"{key}.w", f"must be a positive number, got {v!r}")
    if space.low is not None and not space.low <= v <= space.high:
        raise _space_error(path, f"{key}.w", f"{v:g} is outside w [{space.low:g}, {space.high:g}]")
    return {"with_mse": True, "w": float(v)}


def _parse_joint_point(path: Path, key: str, v, space: SearchSpace) -> dict:
    """A joint loss's point: w a list of one positive weight per part, in range."""
    n = len(space.keys)
    if not isinstance(v, list) or len(v) != n or not all(_is_number(x) and x > 0 for x in v):
        raise _space_error(path, f"{key}.w", f"a joint loss's point needs a list of {n} positive "
                           f"weights (one per part of {space.losses[0]}), got {v!r}")
    for x in v:
        if space.low is not None and not space.low <= x <= space.high:
            raise _space_error(path, f"{key}.w", f"{x:g} is outside w [{space.low:g}, {space.high:g}]")
    return {"with_mse": True, **dict(zip(space.keys, (float(x) for x in v)))}


def _check_parts(path: Path, losses: list[str], with_mse: list[bool]) -> None:
    """Every loss of a file has as many parts; a joint one trains with MSE only."""
    counts = {len(loss_parts(name)) for name in losses}
    if len(counts) > 1:
        raise _space_error(path, "losses", "mixes single and joint losses (or joint losses of "
                           "different sizes); give each its own file")
    if counts.pop() > 1 and with_mse != [True]:
        raise _space_error(path, "with_mse", "a joint loss always trains with MSE "
                           "(mse + w1*a + w2*b): use with_mse: [true]")


def load_space(path: str | os.PathLike) -> SearchSpace:
    """Read and validate a search-space YAML file; errors name the file and the key."""
    path = Path(path)
    raw = _read_yaml(path)
    losses = raw.get("losses")
    if isinstance(losses, str):
        losses = [losses]
    if not isinstance(losses, list) or not losses:
        raise _space_error(path, "losses", "must be a non-empty list of loss names")
    for name in losses:
        if not isinstance(name, str):
            raise _space_error(path, "losses", f"must be loss names, got {name!r}")
        try:
            find_metrics(name)  # a built-in, registered or module:factory loss, or a joint one
        except UserError as e:
            raise _space_error(path, "losses", str(e)) from None
    grid = raw.get("grid", False)
    if not isinstance(grid, bool):
        raise _space_error(path, "grid", f"must be true or false, got {grid!r}")
    with_mse = raw.get("with_mse", [True, False])
    if not isinstance(with_mse, list) or not with_mse or not all(isinstance(c, bool) for c in with_mse) \
            or len(set(with_mse)) != len(with_mse):
        raise _space_error(path, "with_mse", "must be a list of distinct booleans: [true, false]")
    _check_parts(path, losses, with_mse)

    space = SearchSpace(path=str(path), losses=list(losses), with_mse=with_mse, grid=grid)
    if raw.get("w") is not None:
        _parse_w(path, raw["w"], space)
    elif not grid:
        raise _space_error(path, "w", "missing: give {low: ..., high: ..., log: true}")
    points = raw.get("points", [])
    if not isinstance(points, list):
        raise _space_error(path, "points", "must be a list of {with_mse: ..., w: ...}")
    for i, p in enumerate(points):
        point = _parse_point(path, f"points[{i}]", p, space)
        if point in space.points:
            raise _space_error(path, f"points[{i}]", f"duplicate point {point}")
        space.points.append(point)
    if grid and not space.points:
        raise _space_error(path, "points", "a grid needs at least one point")
    return space


def default_space_file(loss: str) -> Path:
    return SPACES_DIR / f"{loss}.yaml"


def space_for(loss: str) -> SearchSpace:
    """search_spaces/<loss>.yaml, or for a loss without a file (a plugin) the default:
    w log-uniform in [0.001, 10], with and without MSE, the paper's points first."""
    path = default_space_file(loss)
    if path.is_file():
        return load_space(path)
    if len(loss_parts(loss)) > 1:
        return joint_default_space(loss)
    return SearchSpace(path=f"default space of {loss}", losses=[loss], low=DEFAULT_W_BOUNDS[0],
                       high=DEFAULT_W_BOUNDS[1], points=[dict(p) for p in paper_points()])


def joint_default_space(loss: str) -> SearchSpace:
    """A joint loss without a file: every weight log-uniform in [0.001, 10], with MSE, and
    the diagonal of the paper's weights first (w1 = w2 = 1, 0.5, 0.25: both terms at the
    weight the paper gave each alone). The single-loss references (w2 -> 0 is outside a log
    space) come from searching the parts alongside: --loss ssim --loss gmsd --loss ssim+gmsd."""
    keys = weight_keys(loss)
    find_metrics(loss)
    return SearchSpace(path=f"default space of {loss}", losses=[loss], low=DEFAULT_W_BOUNDS[0],
                       high=DEFAULT_W_BOUNDS[1], with_mse=[True],
                       points=[{"with_mse": True, **{k: w for k in keys}} for w in paper_weights()])
