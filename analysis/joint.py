"""The report's section on joint losses (`ssim+gmsd`: mse + w1 * ssim + w2 * gmsd, issue 13):
the surrogate's posterior mean of the objective over (w1, w2) as a filled contour, and whether
the pair beats the best single loss.

- The surface, the pair judged and its verdicts are the search's own answer for the pair
  (`tune_vqvae.stats.joint`, recomputed from the trials as `analysis.answer` does for one
  loss): the surface fitted on the search stage's full-length runs, the recommended pair
  judged by its confirmation runs (fresh seeds) only, against the MSE baseline and the best
  confirmed candidate of the pair's parts searched alongside; "not resolved" without
  replicates on both sides.

`section(report, analysis)` is the one hook `analysis.report.build` calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from tune_vqvae.stats.answer import verdict_text
from tune_vqvae.stats.intervals import Interval
from tune_vqvae.stats.joint import BEST_SINGLE
from tune_vqvae.stats.runs import confirm_values, weights_of
from tune_vqvae.stats.surrogate import SurfaceFit
from tune_vqvae.vocab import (
    BASELINE,
    NOT_RESOLVED,
    PAPER,
    RECOMMENDED,
    SEARCH,
    VERDICTS,
    loss_parts,
    point_name,
)

from . import answer, plots
from .document import Table, iv
from .load import CONFIRM

VIEW_MARGIN = 0.5  # decades shown around the weights that ran


@dataclass
class JointResult:
    loss: str
    runs: pd.DataFrame  # full-length runs with both weights: the surface's data
    fit: SurfaceFit | None
    bounds: tuple[float, float]
    note: str = ""
    pair: tuple[float, float] | None = None  # the pair judged
    pair_why: str = ""
    pair_values: list[float] = field(default_factory=list)
    single: str = ""  # the best single loss's config, e.g. "ssim w=2"
    single_values: list[float] = field(default_factory=list)
    vs_single: Interval | None = None
    verdict_single: str = ""
    vs_baseline: Interval | None = None
    verdict_baseline: str = ""


def full_length_runs(trials: pd.DataFrame, loss: str) -> pd.DataFrame:
    """The pair's full-length runs with both weights (any role), as the figure shows them."""
    if "w1" not in trials:
        return trials.iloc[:0]
    t = trials[(trials["loss"] == loss) & trials["w1"].notna() & trials["w2"].notna()]
    return t[answer.full_length(t)] if len(t) else t


def analyse_joint(a, loss: str) -> JointResult:
    """The pair's answer as the search gave it (a.answer), for the report."""
    ans = a.answer["losses"][loss]
    s, comps = ans["surrogate"], ans["comparisons"]
    res = JointResult(loss, full_length_runs(a.trials, loss), a.fits.get(loss),
                      tuple(s.get("bounds") or (math.nan, math.nan)),
                      "" if s.get("fitted") else f"no surface: {s.get('note')}")
    single = comps[f"{RECOMMENDED}_vs_{BEST_SINGLE}"]
    who = single.get("candidate", RECOMMENDED)
    point = ans["candidates"].get(who)
    if point is not None:
        res.pair, res.pair_why = weights_of(point), f"{who.replace('_', ' ')} pair (confirmation runs)"
    res.pair_values = confirm_values(a.rows, loss, who, a.epochs)
    res.single = single.get("reference") or ""
    which = single.get("reference_runs") or {}
    res.single_values = confirm_values(a.rows, which["loss"], which["candidate"], a.epochs) if which else []
    res.vs_single = answer.interval(single)
    res.verdict_single = single.get("verdict") or single.get("note", NOT_RESOLVED)
    base = comps.get(f"{who}_vs_{BASELINE}")
    res.vs_baseline, res.verdict_baseline = answer.said(base) \
        if base else (None, "no confirmation runs of the pair")
    if res.vs_baseline is not None:  # against the baseline: the console's words and ruled-out gain
        res.verdict_baseline = verdict_text(base)
    return res


# --- the figure ------------------------------------------------------------------------------

def _log_axis(axis, decades: float) -> None:
    """Ticks at powers of 10, and labelled 2 and 5 between them when few decades are shown."""
    label = FuncFormatter(lambda v, _: f"{v:g}")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0,)))
    axis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
    axis.set_major_formatter(label)
    axis.set_minor_formatter(label if decades < 2.5 else NullFormatter())


RUN_STYLE = {  # full-length runs on the contour, by role
    PAPER: dict(marker="s", s=46, facecolors="white", edgecolors="k", lw=1.2,
                label="run: reference point (w1 = w2, the paper's weights)"),
    SEARCH: dict(marker="o", s=30, facecolors="white", edgecolors="k", lw=0.9, label="run: searched pair"),
    CONFIRM: dict(marker="D", s=30, facecolors="C4", edgecolors="k", lw=0.7, label="run: confirmation seed"),
}


def contour_plot(a, r: JointResult) -> bytes:
    """The posterior mean of the objective over (w1, w2), log axes, with the runs and the
    recommended pair."""
    fit, (p1, p2) = r.fit, loss_parts(r.loss)[:2]
    fig, ax = plt.subplots(figsize=(7.6, 6.0))
    # Shown: the weights that ran, half a decade around (within the space); beyond, the surface
    # is the GP's reversion to its mean, not data. The colours span what is shown.
    seen = np.log10(r.runs[["w1", "w2"]].to_numpy(float))
    box = [(max(g[0], seen[:, k].min() - VIEW_MARGIN), min(g[-1], seen[:, k].max() + VIEW_MARGIN))
           for k, g in enumerate((fit.log10_w1, fit.log10_w2))]
    i1 = (fit.log10_w1 >= box[0][0] - 1e-9) & (fit.log10_w1 <= box[0][1] + 1e-9)
    i2 = (fit.log10_w2 >= box[1][0] - 1e-9) & (fit.log10_w2 <= box[1][1] + 1e-9)
    w1, w2 = 10 ** fit.log10_w1[i1], 10 ** fit.log10_w2[i2]
    z = fit.mean[np.ix_(i2, i1)]
    positive = bool(np.all(z > 0))
    if positive and z.max() / z.min() > 10:  # orders of magnitude: log colour levels
        levels = np.geomspace(z.min(), z.max(), 22)
        cs = ax.contourf(w1, w2, z, levels=levels, norm=LogNorm(z.min(), z.max()), cmap="viridis_r"
                         if a.lower_is_better else "viridis")
    else:
        cs = ax.contourf(w1, w2, z, levels=20, cmap="viridis_r" if a.lower_is_better else "viridis")
    ax.contour(cs, colors="k", linewidths=0.3, alpha=0.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_axis(ax.xaxis, box[0][1] - box[0][0])
    _log_axis(ax.yaxis, box[1][1] - box[1][0])
    ax.tick_params(which="minor", labelsize=7)
    bar = fig.colorbar(cs, ax=ax, pad=0.02)
    bar.set_label(f"{plots._ylabel(a)}: surrogate's posterior mean")
    if positive and z.max() / z.min() > 10:
        bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    lo, hi = min(w1[0], w2[0]), max(w1[-1], w2[-1])
    ax.plot([lo, hi], [lo, hi], ls=":", color="0.35", lw=1.2, label="w1 = w2")
    (x0, y0), (x1, y1) = 10 ** seen.min(axis=0), 10 ** seen.max(axis=0)
    ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], ls="--", color="0.2", lw=0.9,
            label="weights run (the recommendation is searched inside)")
    roles = r.runs["role"].where(r.runs["role"].isin(list(RUN_STYLE)), SEARCH)
    for role, style in RUN_STYLE.items():
        m = r.runs[roles == role]
        if len(m):
            ax.scatter(m["w1"], m["w2"], zorder=4, clip_on=False, **style)  # runs at the bounds too
    o, (b1, b2), (i1, i2) = fit.objective, fit.recommended, fit.weight_intervals
    ax.errorbar([b1], [b2], xerr=[[b1 - i1.low], [i1.high - b1]], yerr=[[b2 - i2.low], [i2.high - b2]],
                fmt="none", ecolor="k", elinewidth=1.2, capsize=4, zorder=5)
    ax.scatter([b1], [b2], marker="*", s=300, color="gold", edgecolors="k", lw=1, zorder=6, clip_on=False,
               label=f"recommended pair w1 = {b1:.3g} [{i1.low:.3g}, {i1.high:.3g}], w2 = {b2:.3g} "
                     f"[{i2.low:.3g}, {i2.high:.3g}]\n  (bars: 95% of the minimiser's posterior); "
                     f"{a.objective} there {o.estimate:.4g} [{o.low:.4g}, {o.high:.4g}]")
    ax.set_xlim(w1[0], w1[-1])
    ax.set_ylim(w2[0], w2[-1])
    ax.set_xlabel(f"w1: weight of {p1} (log scale)")
    ax.set_ylabel(f"w2: weight of {p2} (log scale)")
    ax.set_title(f"{a.objective} of mse + w1·{p1} + w2·{p2}: GP over (log w1, log w2), "
                 f"{fit.n_observations} full-length runs;\nthe fitted run-to-run noise (sd "
                 f"{fit.noise_std:.3g}) against the colours' span ({z.max() - z.min():.3g})", fontsize=10)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, framealpha=0.9)
    return plots._png(fig)


# --- the report section ------------------------------------------------------------------------

def _pair_with_intervals(fit: SurfaceFit) -> str:
    return ", ".join(f"w{k} = {i.estimate:.3g} [{i.low:.3g}, {i.high:.3g}]"
                     for k, i in enumerate(fit.weight_intervals, 1))


def verdict_sentence(a, r: JointResult) -> str:
    """Does the pair beat the best single loss? 'not resolved' unless replicates decide."""
    pair = point_name(True, r.pair) if r.pair else "–"
    if r.vs_single is None:
        return (f"**Does {r.loss} beat the best single loss? {NOT_RESOLVED}** ({r.verdict_single}; "
                f"the pair {pair}: {len(r.pair_values)} run(s)). Search the parts alongside with "
                f"replicates: `--loss {' --loss '.join(loss_parts(r.loss))} --loss {r.loss}` with "
                f"`--confirm-seeds` >= 2.")
    answer_word = dict(zip(VERDICTS, ("yes", f"{NOT_RESOLVED} (indistinguishable by these runs)",
                                      "no: it is worse")))[r.verdict_single]
    return (f"**Does {r.loss} beat the best single loss? {answer_word}.** The {r.pair_why} {pair} "
            f"({len(r.pair_values)} runs) minus {r.single} ({len(r.single_values)} runs): "
            f"{iv(r.vs_single, sign='+')} {a.objective} (95%, {r.vs_single.method}).")


def section(report, a) -> None:
    """Append the joint losses' section (figures, sentences, table) to the report."""
    if not a.joint_losses:
        return
    report.h("Two weights at once")
    report.p("A joint loss trains with mse + w1·L1 + w2·L2 and searches both weights, log-uniformly, "
             "with one Gaussian-process surrogate over (log w1, log w2). w2 = 0 is outside a log "
             "space, so the single-loss references are the parts' own searches in the same "
             "command; the reference points of the pair are the paper's weights on the diagonal.")
    rows = []
    for loss in a.joint_losses:
        r = analyse_joint(a, loss)
        if r.fit is not None:
            report.figure(f"joint_{loss}.png", contour_plot(a, r),
                          f"{loss}: the surrogate's posterior mean of {a.objective} over (w1, w2), "
                          f"log axes; white markers: full-length runs; star: the recommended pair")
        else:
            report.p(f"{loss}: {r.note}.")
        report.p(verdict_sentence(a, r))
        o = r.fit.objective if r.fit else None
        rows.append([loss, _pair_with_intervals(r.fit) if r.fit else "–",
                     "–" if o is None else f"{o.estimate:.4g} [{o.low:.4g}, {o.high:.4g}]",
                     str(len(r.runs)), point_name(True, r.pair) if r.pair else "–", r.pair_why or "–",
                     f"{iv(r.vs_baseline, sign='+')} ({r.verdict_baseline})",
                     r.single or "–", f"{iv(r.vs_single, sign='+')} ({r.verdict_single})"])
    report.table(Table("", ["loss", "recommended (w1, w2) (95%)", f"{a.objective} there (95%)", "runs fitted",
                            "pair judged", "why", "pair − MSE baseline", "best single loss",
                            "pair − best single"], rows,
                       caption="differences with their 95% interval (paired over same-seed runs, "
                               "else Welch) and verdict where both "
                               "sides have >= 2 full-length runs (fresh-seed confirmation runs "
                               "where the search ran them); otherwise not resolved."))
