"""The report's sections on the single losses: the objective, the answer and its verdicts,
the summary, grid, overhead, failure and Pareto tables, the noise and cost sentences, the
reconstructions to show. Each function reads the `Analysis` and returns text or a `Table`;
`analysis.report.build` puts them in order.
"""

from __future__ import annotations

import math

import pandas as pd

from tune_vqvae.stats.answer import TOO_FEW
from tune_vqvae.stats.equivalence import DEFAULT_MIN_EFFECT, headline, ruled_out
from tune_vqvae.stats.intervals import describe_noise, seeds_needed
from tune_vqvae.stats.noise import budget_text
from tune_vqvae.stats.race import race_text
from tune_vqvae.vocab import RECOMMENDED, paper_weights, point_name

from .answer import REASONS, Comparison
from .document import Table, iv, num, pct, pm, times
from .tables import Analysis, best_group, best_trial

EFFECT = 0.02  # the relative difference the noise line asks about ("to resolve 2% ...")


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
        test = [pm(r["test"], r["test_std"], r["n"])] if held_out else []
        rows.append([r["loss"], r["best"] if isinstance(r["best"], str) else "–",
                     pm(r["value"], r["value_std"], r["n"]), *test,
                     pm(r["psnr"], r["psnr_std"], spec=".2f"),
                     pm(r["ssim"], r["ssim_std"], spec=".4f"),
                     "yes" if r["on_paper_grid"] is True else "no" if r["on_paper_grid"] is False
                     else "–",
                     f"{num(r['completed'], 'g')}/{num(r['trials'], 'g')}",
                     num(r["stopped"], "g"), num(r["failed"], "g")])
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
                       f"{pm(r['value'], r['value_std'], r['n'])} "
                       f"({num(r['psnr'], '.2f')} dB)")
        opt = g[g["kind"] == "searched optimum"]
        o = opt.iloc[0] if len(opt) else None
        if o is None or pd.isna(o.get("value")):
            row += ["–", "–"]
        else:
            row += [(f"{o['point']}: {pm(o['value'], o['value_std'], o['n'])} "
                    f"({num(o['psnr'], '.2f')} dB)"),
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
        rows.append([r["loss"], pm(r["step_ms"], r["step_ms_std"], spec=".3g"),
                     pct(r["overhead_pct"]) + _pct_interval(r) if r["loss"] != "mse" else "(reference)",
                     num(r["recon_loss_ms"], ".3g"), num(r["recon_share_pct"], ".1f") + "%",
                     num(r["trials_timed"], "g"), num(r["search_trial_s"], ".0f"),
                     num(r.get("grid_trial_s"), ".0f"),
                     times(r.get("search_vs_grid")),
                     f"{num(r.get('best_search'))} vs {num(r.get('best_grid'))}"
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
             f"{num(r['epochs'], 'g')}/{num(r['epochs_planned'], 'g')}", r["reason"] or "–"]
            for _, r in a.failures.iterrows()]
    return Table("Trials that did not complete", ["experiment", "trial", "config", "state",
                                                  "epochs", "reason"], rows)


def pareto_table(a: Analysis) -> Table:
    front = a.pareto[a.pareto["pareto"]].sort_values("value", ascending=a.lower_is_better)
    rows = [[r["label"], r["trial_id"], num(r["value"]), num(r["val_psnr"], ".2f"),
             num(r["val_ssim"], ".4f")] for _, r in front.iterrows()]
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
    budget = (a.answer or {}).get("baseline", {}).get("noise_budget")
    split = f" **Noise budget**: {budget_text(budget)}." if budget else ""
    return (f"**Noise**: {text} (measured on the MSE baseline's runs; a two-sided test at 5% "
            f"with 80% power; {a.replicates} = the runs per config the verdicts rest on: the "
            f"confirmation seeds of a confirmed search, else the median runs of its configs).{split}")


def _reason(c: Comparison | None, which: str) -> str:
    """One comparison in words: "vs the MSE baseline: equivalent within 5% (-0.4% [-3.1%, 2.3%]);
    a gain over 3.1% is ruled out at 95%, difference -0.28 [-2.1, +1.6] (unpaired)" (the
    console's words), "vs the best paper point (w=0.5): indistinguishable, difference ..."."""
    if c is None:
        return ""
    d, v = (c.vs_baseline, c.said_baseline or c.verdict_baseline) if which == "baseline" \
        else (c.vs_paper, c.verdict_paper)
    name = "the MSE baseline" if which == "baseline" else f"the best paper point ({c.paper_config})"
    if d is None:
        return f"vs {name}: {v}" if v else ""
    how = c.pairing if which == "baseline" else c.pairing_paper
    return f"vs {name}: {v}, difference {iv(d, '.3g', '+')}" + (f" ({how})" if how else "")


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
                f"{iv(o)} (surrogate fitted on {curve.runs} full-length runs"
                + (f"; {curve.left_out} stopped early or unfinished, not fitted" if curve.left_out else "")
                + ").")
        if near is not None:
            text += f" Runs at {near.config} ({near.n}): {_verdicts_text(near)}."
        out.append(text)
    o = a.overhead
    for _, r in o[o["loss"] != "mse"].iterrows():
        if pd.notna(r["overhead_pct"]):
            out.append(f"{r['loss']} costs {pct(r['overhead_pct'])}{_pct_interval(r)} step time "
                       f"against MSE ({_against_claim(r)}); its loss is "
                       f"{num(r['recon_share_pct'], '.1f')}% of a step.")
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
        return f"{iv(c.vs_paper, '.3g', '+')} vs {c.paper_config}"
    return f"vs {c.paper_config}: –" if c.paper_config else "–"


def verdict_table(a: Analysis) -> Table:
    base = a.baseline_values.get("mse", [])
    rows = []
    for c in a.comparisons:
        mean = iv(c.mean) if c.mean is not None else (f"{c.values[0]:.4g} (1 run)" if c.values else "–")
        vs_base = iv(c.vs_baseline, ".3g", "+") if c.vs_baseline else "–"
        rows.append([c.loss, c.config, c.why, str(c.n), mean, vs_base, _percent_cell(c),
                     _verdict_cell(c), _ruled_out_cell(c), c.pairing or "–",
                     _vs_paper_cell(c), c.verdict_paper or "–"])
    margin = a.answer.get("min_effect", DEFAULT_MIN_EFFECT)
    race = a.answer.get("race")
    levels = "intervals (95%; against the baseline in a race, its look's level: below)" if race \
        else "95% intervals"
    budgeted = any(c.budget for c in a.comparisons)
    if budgeted:  # --constraint: the budget's verdict on the same runs, beside the objective's
        rows = [r + [c.said_budget or "–"] for r, c in zip(rows, a.comparisons)]
    return Table(
        "Verdicts from replicate runs",
        ["loss", "config", "candidate as", "runs", f"{a.objective}: mean [95% CI]",
         f"− MSE baseline [{'CI at its look' if race else '95% CI'}]", "as % of baseline",
         "verdict vs baseline", "largest possible gain",
         "pairing", "− best paper point [95% CI]", "verdict vs paper"]
        + (["budget"] if budgeted else []), rows,
        caption=f"Differences are candidate − reference in {a.objective} "
                f"({a.record.direction}), with {levels} from the full-length runs of each "
                f"config: paired t over same-seed runs where the baseline ran the candidates' "
                f"seeds (`pairing`: with their measured correlation r from 4 pairs), else Welch t "
                f"(percentile bootstrap from 20 runs each); the MSE baseline has {len(base)} "
                f"run(s). Against the baseline: `better` / `worse` when the whole interval lies on "
                f"one side of 0, `equivalent within {margin:g}%` when it lies inside ±{margin:g}% of "
                f"the baseline's mean (the margin, --min-effect), else `not resolved` (more runs "
                f"needed); `largest possible gain`: the interval's good end, beyond which a gain "
                f"is ruled out. Against the best paper point `indistinguishable` means not "
                f"resolved by these runs, not equal. "
                f"`{TOO_FEW}`: fewer than 2 runs of a config, so no difference is stated. "
                f"`recommended w`: the runs nearest to the surrogate's recommended w."
                + (" `budget`: the same runs' difference from the baseline in the budget's metric "
                   "(--constraint), at the objective's level: `within budget` when the whole "
                   "interval lies on the budget's side of its bound, `over budget` when wholly "
                   "past it, else `not resolved`; `best w within budget`: the surrogate's best w "
                   "whose probability of meeting the budget is at least 95%." if budgeted else "")
                + (f" Sequential confirmation ({race_text(race)}): each candidate's differences are repeated "
                   f"confidence "
                   f"intervals of its last look, at that look's level (alpha spent over the looks, "
                   f"shared by the candidates), so every verdict holds although the runs were "
                   f"looked at after each round." if race else ""))


def _percent_cell(c: Comparison) -> str:
    """vs the baseline in % of its mean: the answer's own interval (the one judged)."""
    p = c.percent
    return "–" if p is None else f"{p.estimate:+.1f}% [{p.low:+.1f}%, {p.high:+.1f}%]"


def _verdict_cell(c: Comparison) -> str:
    """"equivalent within 5%" (the margin is part of the claim), else the verdict or why none."""
    if c.min_effect is None:
        return c.verdict_baseline or "–"
    dropped = (f" (left the race at round {c.round}: worse than {c.dropped_by.replace('_', ' ')})"
               if c.dropped_by else "")
    return headline(c.verdict_baseline, c.min_effect) + dropped


def _ruled_out_cell(c: Comparison) -> str:
    """"a gain over 3.1% is ruled out at 95%" (stats.equivalence's words), "–" without a verdict."""
    if c.largest_gain is None or c.vs_baseline is None:
        return "–"
    return ruled_out(c.largest_gain, c.vs_baseline.level)


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
