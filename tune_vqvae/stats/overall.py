"""The answer of a whole search: the MSE baseline's replicates and every loss's answer (one
loss: `answer.loss_answer`, a pair: `joint.loss_answer`), and its console text. The search
writes it into results.json; the report recomputes it from the same rows."""

from __future__ import annotations

from ..constraints import Constraint
from ..vocab import is_joint
from . import joint
from .answer import baseline_summary, loss_answer
from .answer_text import _g, format_loss
from .constrained import add_budget, constrained_answer
from .equivalence import DEFAULT_MIN_EFFECT
from .front import format_front, front_answer
from .noise import budget_text
from .race import Raced, RaceSettings, race_comparisons, race_json, race_of, race_text
from .runs import finite


def search_answer(rows: list[dict], losses: list[str], *, epochs: int, bounds: dict[str, tuple[float, float]],
           lower_is_better: bool, n_per_config: int, fits: dict | None = None,
           min_effect: float = DEFAULT_MIN_EFFECT, race: RaceSettings | None = None,
           constraint: Constraint | None = None, front: tuple[str, str] | None = None) -> dict:
    """results.json's "answer": {"baseline": baseline_summary, "losses": {loss: its answer},
    "min_effect": the equivalence margin of the verdicts against the baseline (--min-effect),
    and with a sequential confirmation (`race`: its settings) "race": what it spent}; the
    surrogates' fits go into `fits` (loss -> SurrogateFit / SurfaceFit) when given. With a
    distortion budget (`constraint`, --constraint) each single loss's answer has "constrained":
    the best w within it (`constrained.constrained_answer`; a pair's 2-D answer has none yet),
    which is then a candidate ("within_budget"), and each of its comparisons against the
    baseline a "budget" entry: the same runs on the constrained metric (`constrained.add_budget`).
    With two objectives (`front`: the objective's name and the trade-off's, --objective twice)
    each single loss's answer has "front": the estimated front over log w (`front.front_answer`)."""
    raced = race_of(rows, race, epochs=epochs, lower_is_better=lower_is_better) if race else None
    out = {
        "baseline": baseline_summary(rows, epochs, raced.state.rounds if raced else n_per_config),
        "losses": {
            loss: (joint.loss_answer if is_joint(loss) else loss_answer)(
                rows, loss, epochs=epochs, bounds=bounds[loss], lower_is_better=lower_is_better, fits=fits,
                min_effect=min_effect, raced=_raced_comparisons(raced, loss, epochs))
            for loss in losses
        },
        "min_effect": min_effect,
    }
    for loss, a in out["losses"].items():
        if constraint is not None and not is_joint(loss):
            a["constrained"] = constrained_answer(rows, loss, epochs=epochs, bounds=bounds[loss],
                                                  lower_is_better=lower_is_better, constraint=constraint)
            add_budget(a, rows, loss, epochs=epochs, constraint=constraint,
                       raced=raced if _in_race(raced, loss) else None)
        if front is not None and not is_joint(loss):
            a["front"] = front_answer(rows, loss, epochs=epochs, bounds=bounds[loss], objective=front[0],
                                      trade_off=front[1])
    if raced:
        out["race"] = race_json(raced)
    return out


def _in_race(raced: Raced | None, loss: str) -> bool:
    return raced is not None and any(n.partition(":")[0] == loss for n in raced.spec.candidates)


def _raced_comparisons(raced: Raced | None, loss: str, epochs: int) -> dict | None:
    """A loss's comparisons from the race (on the test split too, where runs scored it)."""
    if not _in_race(raced, loss):
        return None
    out = {"comparisons": race_comparisons(raced, loss, epochs)}
    if any(finite(r.get("test_value")) for r in raced.rows):
        out["comparisons_test"] = race_comparisons(raced, loss, epochs, "test_value")
    return out


def format_answer(ans: dict, objective: str) -> str:
    lines = []
    for loss, a in ans["losses"].items():
        lines.extend((joint.format_loss if a.get("joint") else format_loss)(loss, a, objective))
        if "front" in a:
            lines.extend(format_front(loss, a["front"]))
    if "race" in ans:
        lines.append(f"sequential confirmation: {race_text(ans['race'])}")
    b = ans["baseline"]
    if "cv" in b:
        m = b["mean"]
        lines.append(
            f"MSE baseline: {objective} {_g(m['estimate'])} [{_g(m['low'])}, {_g(m['high'])}] "
            f"over {b['n']} seeds; run-to-run noise {100 * b['cv']:.1f}% (std {_g(b['std'])}); with "
            f"{b['n_per_config']} seeds per config the smallest resolvable difference is "
            f"{100 * b['detectable_effect']:.0f}%; to resolve {100 * b['effect_asked']:g}% you need "
            f"about {b['seeds_for_effect']} seeds per config, if runs are unpaired (same-seed runs "
            f"that correlate resolve less: each verdict's paired interval says what these did)"
        )
        if "noise_budget" in b:
            lines.append(f"noise budget: {budget_text(b['noise_budget'])}")
    else:
        lines.append(f"MSE baseline: {b.get('note')}")
    return "\n".join(lines)
