"""Figures of the report, each returned as PNG bytes (Agg backend, no display needed)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from tune_vqvae.stats.answer_text import seeds_text
from tune_vqvae.stats.intervals import mean_interval
from tune_vqvae.vocab import PAPER, SEARCH, SEED, paper_weights

from . import answer
from .load import CONFIRM, DIVERGED, FAILED, STOPPED
from .tables import Analysis

DPI = 110


def _finish(fig, ax, xlabel: str, ylabel: str, title: str, legend_size: float = 8,
            minor_grid: bool = True) -> bytes:
    """Labels, grid, the legend outside on the right; the figure as PNG bytes."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both" if minor_grid else "major", alpha=0.25)
    ax.legend(fontsize=legend_size, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _ylabel(a: Analysis) -> str:
    arrow = a.record.direction
    return f"{a.objective.upper() if a.objective in ('fid', 'swd') else a.objective} ({arrow})"


ROLE_STYLE = {  # how a full-length run is drawn, by what it was for
    PAPER: dict(marker="s", s=42, facecolors="white", edgecolors="k", lw=1.3,
                label="run: paper's grid point"),
    SEARCH: dict(marker="o", s=30, facecolors="C0", edgecolors="k", lw=0.6,
                 label="run: searched w"),
    SEED: dict(marker="D", s=28, facecolors="C2", edgecolors="k", lw=0.6,
               label="run: replicate seed"),
    CONFIRM: dict(marker="D", s=34, facecolors="C4", edgecolors="k", lw=0.6,
                  label="run: confirmation seed"),
}


def _log_x(ax) -> None:
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0,)))
    ax.xaxis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _baseline_stripe(ax, values: np.ndarray, scale: float = 1.0, color: str = "C1") -> None:
    """The MSE baseline: its mean, and the 95% interval of that mean as a stripe."""
    if not len(values):
        return
    mean = float(np.mean(values)) / scale
    if len(values) >= 2:
        ci = mean_interval(values)
        ax.axhspan(ci.low / scale, ci.high / scale, color=color, alpha=0.18, lw=0)
        text = f"MSE baseline: mean, 95% CI ({len(values)} runs)"
    else:
        text = "MSE baseline (1 run: no interval)"
    ax.axhline(mean, color=color, ls="--", lw=1.4, label=text)


def _same_seed_baseline(ax, a: Analysis, seeds: list[int] | None) -> None:
    """The MSE baseline's runs at the surrogate's seed(s): what its band compares with (the
    stripe averages the baseline's other seeds too)."""
    t = a.trials
    runs = t[(t["role"] == "baseline") & answer.full_length(t) & t["seed"].isin(seeds or [])]
    if len(runs):
        ax.axhline(float(runs["value"].mean()), color="C1", ls=":", lw=1.4,
                   label=f"MSE baseline at the surrogate's seed{'s' if len(seeds) > 1 else ''}")


def _jittered(w: pd.Series) -> np.ndarray:
    """Replicates at one w drawn side by side (0.025 decades apart), so each stays visible."""
    keys = w.map(lambda v: f"{v:.6g}")
    rank = keys.groupby(keys).cumcount().to_numpy()
    count = keys.map(keys.value_counts()).to_numpy()
    return w.to_numpy(float) * 10 ** (0.025 * (rank - (count - 1) / 2))


def _runs(ax, runs: pd.DataFrame) -> None:
    """Every full-length run, one marker each, styled by its role."""
    x = pd.Series(_jittered(runs["w"]), index=runs.index)
    for role, style in ROLE_STYLE.items():
        m = runs[runs["role"] == role]
        if len(m):
            ax.scatter(x[m.index], m["value"], zorder=4, **style)


def _curve(ax, fit, scale: float = 1.0, color="C0", label=True, seeds: list[int] | None = None,
           runs: int | None = None) -> None:
    w = 10 ** fit.log10_w
    ax.fill_between(w, fit.low / scale, fit.high / scale, color=color, alpha=0.16, lw=0,
                    label=f"surrogate: 95% band{seeds_text(seeds, runs)}" if label else None)
    ax.plot(w, fit.mean / scale, color=color, lw=2,
            label="surrogate: posterior mean (GP on log w)" if label else None)


def _recommended(ax, fit, scale: float = 1.0) -> None:
    """The recommended w as a star with two error bars: the 95% interval of the best w
    (horizontal) and of the objective there (vertical)."""
    o, wi, w = fit.objective, fit.w_interval, fit.recommended_w
    ax.errorbar([w], [o.estimate / scale],
                xerr=[[w - wi.low], [wi.high - w]],
                yerr=[[(o.estimate - o.low) / scale], [(o.high - o.estimate) / scale]],
                fmt="*", ms=17, color="gold", mec="k", ecolor="0.15", elinewidth=1.3,
                capsize=4, zorder=6,
                label=f"recommended w = {w:.3g} [{wi.low:.3g}, {wi.high:.3g}];\n"
                      f"  objective there {o.estimate:.4g} [{o.low:.4g}, {o.high:.4g}] (95%)")


def _marks_below(ax, t: pd.DataFrame) -> None:
    """Runs without a full-length value, as a rug on the bottom edge at their w: stopped
    early (hollow triangles; their value is at another fidelity and is not drawn), failed
    or diverged (red x)."""
    low = ax.get_ylim()[0]
    stopped = t[(t["state"] == STOPPED) & t["with_mse"] & t["w"].notna()]
    if len(stopped):
        at = ", ".join(sorted({f"{e:g}" for e in stopped["epochs"]}))
        ax.scatter(_jittered(stopped["w"]), [low] * len(stopped), marker="^", s=60, facecolors="none",
                   edgecolors="0.35", lw=1.2, clip_on=False, zorder=5,
                   label=f"stopped early (epoch {at} of {stopped['epochs_planned'].max():g}): "
                         f"not fitted, value not shown")
    bad = t[t["state"].isin([FAILED, DIVERGED]) & t["with_mse"] & t["w"].notna()]
    if len(bad):
        ax.scatter(bad["w"], [low] * len(bad), marker="x", color="C3", s=60, zorder=5,
                   clip_on=False, label="failed / diverged")


def _y_range(values: list[np.ndarray]) -> tuple[float, float]:
    v = np.concatenate([np.asarray(x, float).ravel() for x in values if len(x)])
    v = v[np.isfinite(v)]
    low, high = float(v.min()), float(v.max())
    pad = 0.08 * (high - low or abs(high) or 1.0)
    return low - pad, high + pad


def _in_range(fit, runs: pd.DataFrame) -> np.ndarray:
    """Grid points between the smallest and largest w run (where the band is data, not prior)."""
    w = 10 ** fit.log10_w
    return (w >= runs["w"].min() / 1.5) & (w <= runs["w"].max() * 1.5)


def _no_mse_note(ax, a: Analysis, loss: str) -> None:
    """The loss alone (no MSE) has no w: a legend entry with its mean, a dotted line if on scale."""
    g = a.groups[(a.groups["loss"] == loss) & ~a.groups["with_mse"]]
    if g.empty:
        return
    r = g.iloc[0]
    low, high = ax.get_ylim()
    on_scale = low <= r["mean"] <= high
    text = f"{loss} alone, no MSE: {r['mean']:.4g} ({int(r['n'])} run{'s' if r['n'] > 1 else ''})"
    ax.axhline(r["mean"] if on_scale else np.nan, color="C5", ls=":", lw=1.3,
               label=text + ("" if on_scale else ", off the scale"))


def weight_plot(a: Analysis, loss: str) -> bytes:
    """The answer for one loss: the surrogate's posterior mean of the objective over log w
    with its 95% band, every full-length run (replicates side by side, marker by role),
    stopped and failed runs as a rug, the MSE baseline's mean and 95% stripe, the
    recommended w with its intervals; below, where the best w lies (posterior probability)."""
    fig, (ax, axp) = plt.subplots(2, 1, figsize=(7.4, 5.4), sharex=True,
                                  gridspec_kw={"height_ratios": [4, 1], "hspace": 0.08})
    curve = a.curves.get(loss)
    fit = curve.fit if curve is not None else None
    t = a.trials[a.trials["loss"] == loss]
    runs = answer.full_length_runs(a.trials, loss)
    base = a.baseline_values.get(loss, np.array([]))
    _baseline_stripe(ax, base)
    ranges = [runs["value"].to_numpy(), base]
    if len(base) >= 2:
        ci = mean_interval(base)
        ranges.append(np.array([ci.low, ci.high]))
    if fit is not None:
        seeds = a.answer["losses"][loss]["surrogate"].get("seeds")
        _curve(ax, fit, seeds=seeds, runs=fit.n_observations)
        _same_seed_baseline(ax, a, seeds)
        keep = _in_range(fit, runs)
        ranges += [fit.low[keep], fit.high[keep]]
    _runs(ax, runs)
    if fit is not None:
        _recommended(ax, fit)
    if any(len(r) for r in ranges):
        ax.set_ylim(*_y_range(ranges))
    _no_mse_note(ax, a, loss)
    _marks_below(ax, t)
    _log_x(ax)
    if curve is not None and np.isfinite(curve.bounds[0]):
        ax.set_xlim(*curve.bounds)
    elif t["with_mse"].any() and t.loc[t["with_mse"], "w"].notna().any():
        w = t.loc[t["with_mse"], "w"].dropna()
        ax.set_xlim(w.min() / 2, w.max() * 2)
    _minimiser_panel(axp, fit, curve)
    n_text = f"{len(runs)} full-length runs" + (
        f"; surrogate on the search stage's {curve.runs}" if curve is not None and curve.runs < len(runs)
        else "") + (f", {curve.left_out} not fitted" if curve is not None and curve.left_out else "")
    ax.set_title(f"{loss}: {a.objective} vs weight ({n_text})")
    ax.set_ylabel(_ylabel(a))
    ax.grid(True, which="major", alpha=0.25)
    ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axp.set_xlabel("weight w in  mse + w · " + loss + "  (log scale)")
    return _png(fig)


def _minimiser_panel(ax, fit, curve) -> None:
    if fit is None:
        ax.text(0.5, 0.5, curve.note if curve is not None else "no curve", ha="center",
                va="center", transform=ax.transAxes, fontsize=8)
        ax.set_yticks([])
        return
    # per 0.2 decade: the grid's own resolution shows noise, and a mass piled on the edge of
    # the grid (a curve still falling there) would dwarf the rest
    lo, hi = fit.log10_w[0], fit.log10_w[-1]
    edges = np.linspace(lo, hi, max(2, round((hi - lo) / 0.2)) + 1)
    mass, _ = np.histogram(fit.log10_w, bins=edges, weights=fit.p_min)
    ax.bar(10 ** edges[:-1], mass / max(mass.max(), 1e-12), width=np.diff(10 ** edges), align="edge",
           color="C0", alpha=0.45, lw=0)
    ax.axvspan(fit.w_interval.low, fit.w_interval.high, color="gold", alpha=0.22, lw=0)
    ax.axvline(fit.recommended_w, color="k", lw=1)
    ax.set_ylim(0, 1.1)
    ax.set_yticks([])
    ax.set_ylabel("where the\nbest w lies", fontsize=8, rotation=0, ha="right", va="center")
    ax.text(0.99, 0.9, "posterior probability of the minimiser per 0.2 decade; shaded: 95%",
            transform=ax.transAxes, ha="right", va="top", fontsize=7, color="0.3")
    ax.grid(True, which="major", axis="x", alpha=0.25)


def combined_plot(a: Analysis) -> bytes:
    """Every loss's surrogate curve relative to its MSE baseline's mean (1 = as good as MSE),
    with the baseline's 95% stripe; stars at the recommended w."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    relative = all(len(a.baseline_values.get(loss, [])) for loss in a.losses)
    drawn = []
    for i, loss in enumerate(a.losses):
        curve = a.curves.get(loss)
        if curve is None or curve.fit is None:
            continue
        fit, color = curve.fit, f"C{i % 10}"
        scale = float(np.mean(a.baseline_values[loss])) if relative else 1.0
        _curve(ax, fit, scale, color, label=False)
        ax.lines[-1].set_label(f"{loss} (band: 95%)")
        ax.scatter([fit.recommended_w], [fit.objective.estimate / scale], marker="*", s=180,
                   color=color, edgecolors="k", zorder=5)
        keep = _in_range(fit, answer.full_length_runs(a.trials, loss))
        drawn += [fit.low[keep] / scale, fit.high[keep] / scale]
    if relative:
        base = a.baseline_values[a.losses[0]] if a.losses else np.array([])
        _baseline_stripe(ax, base, float(np.mean(base)) if len(base) else 1.0, color="0.3")
        drawn.append(np.array([1.0]))
    for w in paper_weights():
        ax.axvline(w, color="0.8", lw=0.8, zorder=0)
    if drawn:
        ax.set_ylim(*_y_range(drawn))
    _log_x(ax)
    return _finish(fig, ax, "weight w (log scale; grey lines: the paper's grid)",
                   f"{a.objective} / MSE baseline mean" if relative else _ylabel(a),
                   f"All losses: surrogate of {a.objective} vs weight (★ = recommended w)")


def _pareto_range(p: pd.DataFrame, column: str, lower_is_better: bool) -> tuple[float, float]:
    """An axis range of the Pareto plot: far outliers on the bad side (beyond Tukey's outer
    fence, say the paper's GMSD alone at ~4x MSE's FID) would squash every other trial into a
    corner; the front and the MSE runs always stay on the scale."""
    bad = (1 if lower_is_better else -1) * p[column].to_numpy(float)
    q1, q3 = np.percentile(bad, [25, 75])
    kept = p[column][(bad <= q3 + 3 * (q3 - q1)) | p["pareto"] | (p["loss"] == "mse")]
    low, high = float(kept.min()), float(kept.max())
    pad = 0.08 * (high - low or abs(high) or 1.0)
    return low - pad, high + pad


def pareto_plot(a: Analysis) -> bytes:
    """Objective vs PSNR of every completed trial; the non-dominated ones joined. Trials far
    off on the bad side are arrows on the plot's edge (counted in the legend)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    p = a.pareto
    (x0, x1), (y0, y1) = _pareto_range(p, "val_psnr", False), _pareto_range(p, "value", a.lower_is_better)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    names = ["mse"] + a.losses
    for i, loss in enumerate(names):
        m = p[p["loss"] == loss]
        if m.empty:
            continue
        color, marker = ("k", "s") if loss == "mse" else (f"C{i - 1}", "o")
        off_y = (m["value"] < y0) | (m["value"] > y1)
        off = off_y | (m["val_psnr"] < x0)
        ax.scatter(m["val_psnr"][~off], m["value"][~off], s=28, color=color, marker=marker, label=loss,
                   alpha=0.8)
        if off.any():  # on the edge, each coordinate clamped to the axis range
            o = m[off]
            label = (f"{loss}: {len(o)} off the scale (PSNR {o['val_psnr'].min():.3g}-"
                     f"{o['val_psnr'].max():.3g}, {a.objective} {o['value'].min():.4g}-"
                     f"{o['value'].max():.4g})")
            arrow_y = "^" if a.lower_is_better else "v"
            for part, arrow in ((m[off_y], arrow_y), (m[off & ~off_y], "<")):
                if len(part):
                    ax.scatter(part["val_psnr"].clip(x0, x1), part["value"].clip(y0, y1), s=60,
                               color=color, marker=arrow, clip_on=False, zorder=5, label=label)
                    label = None
    front = p[p["pareto"]].sort_values("val_psnr")
    if len(front):
        ax.plot(front["val_psnr"], front["value"], "-", color="0.3", lw=1, zorder=0)
        ax.scatter(front["val_psnr"], front["value"], s=150, facecolors="none",
                   edgecolors="C3", lw=1.5, label="non-dominated (Pareto)")
        for _, r in front.iterrows():
            ax.annotate(r["label"], (r["val_psnr"], r["value"]), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
    return _finish(fig, ax, "held-out PSNR (dB, higher is better: distortion)",
                   _ylabel(a) + " (perception)", "Perception-distortion trade-off across trials",
                   minor_grid=False)


def reconstructions_plot(originals, rows: list[tuple[str, object]]) -> bytes:
    """Rows: the originals, then each model's reconstructions (tensors N,3,H,W in [0, 1])."""
    all_rows = [("original", originals)] + rows
    n = originals.shape[0]
    fig, axes = plt.subplots(len(all_rows), 1, figsize=(max(4, 1.1 * n), 1.25 * len(all_rows)))
    axes = np.atleast_1d(axes)
    for ax, (title, x) in zip(axes, all_rows):
        x = x.detach().float().cpu().clamp(0, 1).numpy()  # N,3,H,W
        strip = np.concatenate([np.pad(img.transpose(1, 2, 0), ((1, 1), (1, 1), (0, 0)),
                                       constant_values=1.0) for img in x], axis=1)
        ax.imshow(strip, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(title, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle("Held-out images and their reconstructions", fontsize=10)
    fig.tight_layout()
    return _png(fig)
