"""Assemble the report: CSV tables, PNG figures, report.md and a self-contained report.html.

Every file goes through `tune_vqvae.errors.atomic_write_*`: a reader (or a crash) never
sees half a report.
"""

from __future__ import annotations

import base64
import html
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tune_vqvae.errors import atomic_write_bytes, atomic_write_text
from tune_vqvae.stats.answer import TOO_FEW
from tune_vqvae.stats.intervals import Interval, describe_noise, seeds_needed
from tune_vqvae.vocab import RECOMMENDED, paper_weights, point_name

from . import joint, plots
from .answer import REASONS, Comparison, comparisons_frame, curves_frame
from .load import IN_PROGRESS
from .tables import Analysis, best_group, best_trial

EFFECT = 0.02  # the relative difference the noise line asks about ("to resolve 2% ...")


# --- formatting ----------------------------------------------------------------------------

def _f(v, spec=".4g", none="–") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return none
    try:
        return format(v, spec)
    except (TypeError, ValueError):
        return str(v)


def _pm(mean, std, n=None, spec=".4g") -> str:
    s = _f(mean, spec)
    if std is not None and not (isinstance(std, float) and math.isnan(std)):
        s += f" ± {_f(std, spec)}"
    if n is not None and not (isinstance(n, float) and math.isnan(n)) and n > 1:
        s += f" (n={int(n)})"
    return s


def _iv(i: Interval | None, spec=".4g", sign="") -> str:
    """An estimate with its interval: -1.2 [-3.4, 0.95]."""
    if i is None:
        return "–"
    return f"{i.estimate:{sign}{spec}} [{i.low:{sign}{spec}}, {i.high:{sign}{spec}}]"


def _iv_pct(i: Interval | None, reference: float) -> str:
    """A difference as a percentage of the reference mean, with its interval."""
    if i is None or not reference:
        return "–"
    r = abs(reference) / 100
    return f"{i.estimate / r:+.1f}% [{i.low / r:+.1f}%, {i.high / r:+.1f}%]"


def _x(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}×"


def _pct(v) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.1f}%"


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""

    def markdown(self) -> str:
        def cell(s):
            return str(s).replace("|", "\\|").replace("\n", " ")
        out = ["| " + " | ".join(self.columns) + " |",
               "|" + "|".join("---" for _ in self.columns) + "|"]
        out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in self.rows]
        if not self.rows:
            out.append("| " + " | ".join(["(none)"] + [""] * (len(self.columns) - 1)) + " |")
        return "\n".join(out)

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                       for r in self.rows) or \
            f"<tr><td colspan='{len(self.columns)}'>(none)</td></tr>"
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass
class Report:
    title: str
    blocks: list = field(default_factory=list)  # ("h", text) ("p", text) ("t", Table) ("img", name)
    figures: dict[str, bytes] = field(default_factory=dict)

    def h(self, text):
        self.blocks.append(("h", text))

    def p(self, text):
        self.blocks.append(("p", text))

    def ul(self, items):
        if items:
            self.blocks.append(("ul", list(items)))

    def table(self, t: Table):
        self.blocks.append(("t", t))

    def figure(self, name: str, png: bytes, alt: str):
        self.figures[name] = png
        self.blocks.append(("img", (name, alt)))

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, x in self.blocks:
            if kind == "h":
                out += [f"## {x}", ""]
            elif kind == "p":
                out += [x, ""]
            elif kind == "ul":
                out += [f"- {i}" for i in x] + [""]
            elif kind == "t":
                if x.title:
                    out += [f"**{x.title}**", ""]
                out += [x.markdown(), ""]
                if x.caption:
                    out += [f"_{x.caption}_", ""]
            elif kind == "img":
                out += [f"![{x[1]}]({x[0]})", ""]
        return "\n".join(out)

    def html(self) -> str:
        parts = [f"<h1>{html.escape(self.title)}</h1>"]
        for kind, x in self.blocks:
            if kind == "h":
                parts.append(f"<h2>{html.escape(x)}</h2>")
            elif kind == "p":
                parts.append(f"<p>{_inline(x)}</p>")
            elif kind == "ul":
                parts.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in x) + "</ul>")
            elif kind == "t":
                if x.title:
                    parts.append(f"<h3>{html.escape(x.title)}</h3>")
                parts.append(x.html())
                if x.caption:
                    parts.append(f"<p class='caption'>{_inline(x.caption)}</p>")
            elif kind == "img":
                data = base64.b64encode(self.figures[x[0]]).decode()
                parts.append(f"<figure><img alt='{html.escape(x[1])}' "
                             f"src='data:image/png;base64,{data}'><figcaption>"
                             f"{html.escape(x[1])}</figcaption></figure>")
        return HTML_PAGE.format(title=html.escape(self.title), body="\n".join(parts))


def _inline(text: str) -> str:
    """Markdown's `code` and **bold** in a paragraph, for the HTML page."""
    import re

    s = html.escape(text)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", s)


HTML_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; }}
th {{ background: #f2f2f2; }}
tr:nth-child(even) td {{ background: #fafafa; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; }}
figcaption, .caption {{ color: #555; font-size: 0.9em; }}
code {{ background: #f4f4f4; padding: 0 3px; }}
</style></head><body>
{body}
</body></html>
"""


# --- the report's content ----------------------------------------------------------------

def objective_text(a: Analysis, requested: bool) -> str:
    name = a.record.text
    named = set(a.trials["objective_name"].dropna()) - {""}
    how = ("chosen with --objective" if requested else
           "the objective the search minimised" if named == {a.objective} else
           "FID where the trials reported it, else SWD")
    return f"Objective: **{a.objective}** ({how}; {a.record.direction}): {name}."


def summary_table(a: Analysis) -> Table:
    held_out = bool((a.trials["holdout"] > 0).any())  # the search selected on held-out images
    rows = []
    for _, r in a.summary.iterrows():
        test = [_pm(r["test"], r["test_std"], r["n"])] if held_out else []
        rows.append([r["loss"], r["best"] if isinstance(r["best"], str) else "–",
                     _pm(r["value"], r["value_std"], r["n"]), *test,
                     _pm(r["psnr"], r["psnr_std"], spec=".2f"),
                     _pm(r["ssim"], r["ssim_std"], spec=".4f"),
                     "yes" if r["on_paper_grid"] is True else "no" if r["on_paper_grid"] is False
                     else "–",
                     f"{_f(r['completed'], 'g')}/{_f(r['trials'], 'g')}",
                     _f(r["stopped"], "g"), _f(r["failed"], "g")])
    return Table(
        "Best observed config per loss",
        ["loss", "best observed", f"{a.objective} (mean ± sd, runs)",
         *([f"{a.objective} on test"] if held_out else []), "PSNR (dB)", "SSIM",
         "on paper grid", "completed/trials", "stopped early", "failed"],
        rows,
        caption="The config with the best mean over its full-length runs: the best of many "
                "noisy observations is optimistic (the winner's curse), which is why the answer "
                "above is the surrogate's recommended w and the verdicts rest on replicates. "
                "PSNR/SSIM on the held-out images of the same trials."
                + (f" Selected on held-out training images (--holdout); `{a.objective} on test` "
                   f"scores it on the test images, which the selection never saw." if held_out else
                   " Selected and scored on the same images (no --holdout)."))


def grid_table(a: Analysis) -> Table:
    points = [point_name(True, w) for w in paper_weights()] + [point_name(False, None)]
    rows = []
    for loss in a.losses:
        g = a.grid[a.grid["loss"] == loss]
        row = [loss]
        for pname in points:
            m = g[(g["point"] == pname) & (g["kind"] == "paper grid")]
            r = m.iloc[0] if len(m) else None
            row.append("not run" if r is None or pd.isna(r.get("value")) else
                       f"{_pm(r['value'], r['value_std'], r['n'])} "
                       f"({_f(r['psnr'], '.2f')} dB)")
        opt = g[g["kind"] == "searched optimum"]
        o = opt.iloc[0] if len(opt) else None
        if o is None or pd.isna(o.get("value")):
            row += ["–", "–"]
        else:
            row += [(f"{o['point']}: {_pm(o['value'], o['value_std'], o['n'])} "
                    f"({_f(o['psnr'], '.2f')} dB)"),
                    str(o.get("best_grid_point", "–")) if pd.notna(o.get("best_grid_point"))
                    else "–"]
        rows.append(row)
    return Table("The paper's grid and the best observed config",
                 ["loss"] + points + ["best observed", "best grid point"], rows,
                 caption=f"{a.objective}, mean ± sd over the runs of each config (PSNR in "
                         f"brackets). Whether a difference is real: the verdict table.")


def overhead_table(a: Analysis) -> Table:
    rows = []
    for _, r in a.overhead.iterrows():
        rows.append([r["loss"], _pm(r["step_ms"], r["step_ms_std"], spec=".3g"),
                     _pct(r["overhead_pct"]) + _pct_interval(r) if r["loss"] != "mse" else "(reference)",
                     _f(r["recon_loss_ms"], ".3g"), _f(r["recon_share_pct"], ".1f") + "%",
                     _f(r["trials_timed"], "g"), _f(r["search_trial_s"], ".0f"),
                     _f(r.get("grid_trial_s"), ".0f"),
                     _x(r.get("search_vs_grid")),
                     f"{_f(r.get('best_search'))} vs {_f(r.get('best_grid'))}"
                     if r["loss"] != "mse" else "–"])
    return Table(
        "",
        ["loss", "step (ms)", "vs MSE step", "loss fwd+bwd (ms)", "loss share of step",
         "trials timed", "search trial-s", "paper grid trial-s", "search / grid",
         f"best {a.objective}: search vs grid"], rows,
        caption="step: mean wall time of a training step (first epoch left out as warm-up), "
                "averaged over the loss's trials; vs MSE step: relative to the plain-MSE "
                "baseline of the same search, with a 95% Welch interval over the trials' step "
                "times (the paper claimed < 10%). loss share: the "
                "reconstruction loss's own forward+backward (timed alone) over the step. "
                "trial-s: seconds trials held their accelerator (GPU-seconds with one GPU per "
                "trial); the paper's grid is its 4 full runs per loss (measured on the grid "
                "points this search ran, estimated from seconds per epoch where one was "
                "stopped). Concurrent trials on a shared device inflate step times alike.")


def failures_table(a: Analysis) -> Table:
    rows = [[r["experiment"], r["trial_id"], r["label"], r["state"],
             f"{_f(r['epochs'], 'g')}/{_f(r['epochs_planned'], 'g')}", r["reason"] or "–"]
            for _, r in a.failures.iterrows()]
    return Table("Trials that did not complete", ["experiment", "trial", "config", "state",
                                                  "epochs", "reason"], rows)


def pareto_table(a: Analysis) -> Table:
    front = a.pareto[a.pareto["pareto"]].sort_values("value", ascending=a.lower_is_better)
    rows = [[r["label"], r["trial_id"], _f(r["value"]), _f(r["val_psnr"], ".2f"),
             _f(r["val_ssim"], ".4f")] for _, r in front.iterrows()]
    return Table("Non-dominated trials (no other trial is better in both)",
                 ["config", "trial", a.objective, "PSNR (dB)", "SSIM"], rows)


def noise_sentence(a: Analysis) -> str:
    """The run-to-run noise of the MSE baseline and the smallest effect it lets this search
    resolve: "to resolve 2% you need about N seeds per config"."""
    n_base = len(a.baseline_values.get("mse", []))
    if a.noise is None:
        return (f"**Run-to-run noise: not measured**: the MSE baseline has {n_base} full-length "
                f"run(s); with fewer than 2 no difference below can be given an interval. Run the "
                f"baseline with several seeds (at least 3).")
    if a.replicates >= 2:
        text = describe_noise(a.noise, a.replicates, EFFECT)
    else:
        text = (f"run-to-run noise {100 * a.noise.cv:.1f}% (std {a.noise.std:.3g} over "
                f"{a.noise.n} seeds); with one run per config no difference is resolvable; to "
                f"resolve {100 * EFFECT:g}% you need about {seeds_needed(a.noise.cv, EFFECT)} "
                f"seeds per config")
    return (f"**Noise**: {text} (measured on the MSE baseline's runs; a two-sided test at 5% "
            f"with 80% power; {a.replicates} = the runs per config the verdicts rest on: the "
            f"confirmation seeds of a confirmed search, else the median runs of its configs).")


def _reason(c: Comparison | None, which: str) -> str:
    """One comparison in words: "vs MSE baseline -1.2 [-3.4, 0.95] (indistinguishable)"."""
    if c is None:
        return ""
    d, v = (c.vs_baseline, c.verdict_baseline) if which == "baseline" else (c.vs_paper, c.verdict_paper)
    name = "the MSE baseline" if which == "baseline" else f"the best paper point ({c.paper_config})"
    if d is None:
        return f"vs {name}: {v}" if v else ""
    how = c.pairing if which == "baseline" else c.pairing_paper
    return f"vs {name}: {v}, difference {_iv(d, '.3g', '+')}" + (f" ({how})" if how else "")


def _verdicts_text(c: Comparison) -> str:
    return "; ".join(x for x in (_reason(c, "baseline"), _reason(c, "paper")) if x)


def answer_lines(a: Analysis) -> list[str]:
    """Per loss: the recommended w with its intervals, and the verdicts of the run nearest to it."""
    out = []
    for loss in a.losses:
        curve = a.curves.get(loss)
        rows = [c for c in a.comparisons if c.loss == loss]
        if curve is None or curve.fit is None:
            best = next((c for c in rows if "best observed" in c.why), None)
            text = f"**{loss}**: {curve.note if curve else 'no curve'}."
            if best is not None:
                text += f" Best observed {best.config} ({best.n} run(s)): {_verdicts_text(best)}."
            out.append(text)
            continue
        f, o = curve.fit, curve.fit.objective
        near = next((c for c in rows if REASONS[RECOMMENDED] in c.why), None)
        text = (f"**{loss}**: recommended w = {f.recommended_w:.3g} (95% interval "
                f"{f.w_interval.low:.3g} to {f.w_interval.high:.3g}); {a.objective} there "
                f"{_iv(o)} (surrogate fitted on {curve.runs} full-length runs"
                + (f"; {curve.left_out} stopped early or unfinished, not fitted" if curve.left_out else "")
                + ").")
        if near is not None:
            text += f" Runs at {near.config} ({near.n}): {_verdicts_text(near)}."
        out.append(text)
    o = a.overhead
    for _, r in o[o["loss"] != "mse"].iterrows():
        if pd.notna(r["overhead_pct"]):
            out.append(f"{r['loss']} costs {_pct(r['overhead_pct'])}{_pct_interval(r)} step time "
                       f"against MSE ({_against_claim(r)}); its loss is "
                       f"{_f(r['recon_share_pct'], '.1f')}% of a step.")
    return out


def _pct_interval(r) -> str:
    """' [+3.1, +9.9]' (95%, from the step times of the trials), or '' below 2 trials a side."""
    low, high = r.get("overhead_low_pct", math.nan), r.get("overhead_high_pct", math.nan)
    return "" if pd.isna(low) or pd.isna(high) else f" [{low:+.1f}, {high:+.1f}]"


def _against_claim(r, claim: float = 10.0) -> str:
    """The paper's "under 10%" as a verdict: only when the interval lies on one side of it."""
    low, high = r.get("overhead_low_pct", math.nan), r.get("overhead_high_pct", math.nan)
    if pd.isna(low) or pd.isna(high):
        return f"{'within' if r['overhead_pct'] < claim else 'above'} the paper's {claim:g}% claim " \
               f"on its point estimate; fewer than 2 timed trials a side, no interval"
    if high < claim:
        return f"within the paper's {claim:g}% claim"
    if low > claim:
        return f"above the paper's {claim:g}% claim"
    return f"not resolved against the paper's {claim:g}% claim"


def _vs_paper_cell(c: Comparison) -> str:
    if "best paper point" in c.why:
        return "(is the best paper point)"
    if c.vs_paper is not None:
        return f"{_iv(c.vs_paper, '.3g', '+')} vs {c.paper_config}"
    return f"vs {c.paper_config}: –" if c.paper_config else "–"


def verdict_table(a: Analysis) -> Table:
    base = a.baseline_values.get("mse", [])
    rows = []
    for c in a.comparisons:
        ref = float(sum(a.baseline_values[c.loss]) / len(a.baseline_values[c.loss])) \
            if len(a.baseline_values.get(c.loss, [])) else 0.0
        mean = _iv(c.mean) if c.mean is not None else (f"{c.values[0]:.4g} (1 run)" if c.values else "–")
        vs_base = _iv(c.vs_baseline, ".3g", "+") if c.vs_baseline else "–"
        rows.append([c.loss, c.config, c.why, str(c.n), mean, vs_base,
                     _iv_pct(c.vs_baseline, ref), c.verdict_baseline or "–", c.pairing or "–",
                     _vs_paper_cell(c), c.verdict_paper or "–"])
    return Table(
        "Verdicts from replicate runs",
        ["loss", "config", "candidate as", "runs", f"{a.objective}: mean [95% CI]",
         "− MSE baseline [95% CI]", "as % of baseline", "verdict vs baseline", "pairing",
         "− best paper point [95% CI]", "verdict vs paper"], rows,
        caption=f"Differences are candidate − reference in {a.objective} "
                f"({a.record.direction}), with 95% intervals from the full-length runs of each "
                f"config: paired t over same-seed runs where the baseline ran the candidates' "
                f"seeds (`pairing`: with their measured correlation r from 4 pairs), else Welch t "
                f"(percentile bootstrap from 20 runs each); the MSE baseline has {len(base)} "
                f"run(s). `indistinguishable` means not resolved by these runs, not equal. "
                f"`{TOO_FEW}`: fewer than 2 runs of a config, so no difference is stated. "
                f"`recommended w`: the runs nearest to the surrogate's recommended w.")


def cost_sentence(a: Analysis) -> str:
    """The search's total trial-seconds against the paper's grid for the same losses."""
    o = a.overhead
    total = o["search_trial_s"].sum()
    base = o.loc[o["loss"] == "mse", "search_trial_s"].sum()
    grid = o.loc[o["loss"] != "mse", "grid_trial_s"].sum() + base if "grid_trial_s" in o \
        else math.nan
    n = len(a.trials)
    text = (f"The search used {total:,.0f} trial-seconds over {n} trials (GPU-seconds when "
            f"each trial held one GPU)")
    if grid and not math.isnan(grid):
        text += (f"; the paper's fixed grid for the same {len(a.losses)} loss(es) (4 full runs "
                 f"each + the MSE baseline) would have cost {grid:,.0f}: the search cost "
                 f"{total / grid:.2f}× the grid, for the searched optimum instead of the best "
                 f"grid point (table above)")
    return text + "."


def reconstruction_selection(a: Analysis) -> tuple[list[tuple[str, str]], list[str]]:
    picks, notes = [], []
    for loss in ["mse"] + a.losses:
        g = best_group(a, loss)
        if g is None:
            continue
        t = best_trial(a, g)
        title = "MSE baseline" if loss == "mse" else \
            f"{loss} best\n{point_name(g['with_mse'], g['w'])}"
        if t["checkpoint"]:
            picks.append((title, t["checkpoint"]))
        else:
            notes.append(f"{loss}: trial {t['trial_id']} has no Trainer checkpoint "
                         f"(trainer.pt) to reconstruct from")
    return picks, notes


def build(a: Analysis, experiments: list[Path], out: Path, *, requested_objective: bool,
          images: int = 8, device: str = "auto", data_source: str | None = None,
          reconstructions: bool = True, stream=None) -> Report:
    r = Report("Perceptual-loss weight search: analysis report")
    t = a.trials
    states = t["state"].value_counts()
    r.p(f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} from {len(experiments)} experiment "
        f"director{'y' if len(experiments) == 1 else 'ies'}, {len(t)} trials ("
        + ", ".join(f"{n} {s}" for s, n in states.items()) + ").")
    r.ul(f"`{e}`" for e in experiments)
    r.p(objective_text(a, requested_objective))
    if t["state"].isin(IN_PROGRESS).any():
        r.p("**The search is still running**: "
            f"{int(t['state'].isin(IN_PROGRESS).sum())} trials are not finished; "
            "run the analysis again for the final numbers.")
    if a.seeded:
        r.p("Configurations run with several seeds show mean ± sd (n = runs) in the tables; "
            "the figures show every run.")
    if a.notes:
        r.ul(a.notes)

    r.h("Answer")
    r.p(noise_sentence(a))
    r.ul(answer_lines(a))
    r.table(verdict_table(a))

    r.h(f"{a.objective.upper()} versus weight")
    for loss in a.losses:
        r.figure(f"weight_{loss}.png", plots.weight_plot(a, loss),
                 f"{loss}: the surrogate's posterior mean of {a.objective} over log w with its 95% "
                 f"band (a Gaussian process fitted to the full-length runs only), every run "
                 f"(replicates side by side), runs stopped early as triangles on the bottom edge "
                 f"(not fitted), the MSE baseline's mean and 95% interval (stripe), the "
                 f"recommended w with the 95% intervals of w and of {a.objective} there")
    if any(c.fit is not None for c in a.curves.values()):
        r.figure("weight_all.png", plots.combined_plot(a),
                 f"every loss's surrogate of {a.objective} relative to the MSE baseline's mean")
    r.table(summary_table(a))
    r.table(grid_table(a))
    joint.section(r, a)  # joint losses (ssim+gmsd): the contour over (w1, w2), the pair's verdict

    r.h("Perception versus distortion")
    if len(a.pareto):
        r.figure("pareto.png", plots.pareto_plot(a),
                 f"{a.objective} vs PSNR of every completed trial; circled: non-dominated")
        r.table(pareto_table(a))
    else:
        r.p("No completed trial with PSNR yet.")

    r.h("Compute overhead")
    r.table(overhead_table(a))
    r.p(cost_sentence(a))

    r.h("Reconstructions")
    if reconstructions:
        picks, notes = reconstruction_selection(a)
        if picks:
            from .recon import reconstruct

            originals, rows, more = reconstruct(picks, images, device, data_source, stream)
            notes += more
            if rows:
                r.figure("reconstructions.png", plots.reconstructions_plot(originals, rows),
                         "rows: original, MSE baseline, each loss's best trial")
        if notes:
            r.ul(notes)
        if "reconstructions.png" not in r.figures:
            r.p("No reconstructions figure: no best trial had a readable Trainer checkpoint.")
    else:
        r.p("Skipped (--no-reconstructions).")

    r.h("Failed and stopped trials")
    r.table(failures_table(a))

    r.h("Files")
    r.ul([f"`{name}`" for name in CSV_FILES] + [f"`{n}`" for n in r.figures])
    return r


CSV_FILES = ("summary.csv", "grid.csv", "overhead.csv", "failures.csv", "pareto.csv",
             "trials.csv", "verdicts.csv", "curves.csv")


def _csv(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue()


def write(a: Analysis, r: Report, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    trials = a.trials.drop(columns=["search"], errors="ignore")
    frames = dict(zip(CSV_FILES, (a.summary, a.grid, a.overhead, a.failures, a.pareto, trials,
                                  comparisons_frame(a.comparisons), curves_frame(a.curves))))
    for name, df in frames.items():
        atomic_write_text(out / name, _csv(df))
        written.append(out / name)
    for name, png in r.figures.items():
        atomic_write_bytes(out / name, png)
        written.append(out / name)
    atomic_write_text(out / "report.md", r.markdown())
    atomic_write_text(out / "report.html", r.html())
    written += [out / "report.md", out / "report.html"]
    return written

