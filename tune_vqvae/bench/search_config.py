"""The search benchmark's settings (`python -m tune_vqvae.bench search`, `search_cli` reads
its flags into them): the curves, strategies, budgets and the searches' own defaults, and
the split "S+C" / "S+CxB" of the sequential confirmation's strategies (`search_sim`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..curves import load_curve
from ..errors import UserError
from ..stats import sequential
from ..vocab import CANDIDATES, RECOMMENDED

# "constrained" runs in search_budget (the budget's simulation and truth)
STRATEGIES = ("paper_grid", "old", "new", "new_asha", "paired", "live", "constrained")
SEARCH_SEEDS = ("distinct", "shared")


@dataclass
class SearchBenchConfig:
    curves: list[str] = field(default_factory=lambda: ["realistic", "no_gain"])
    repeats: int = 100
    budgets: list[int] = field(default_factory=lambda: [16])
    strategies: list[str] = field(default_factory=lambda: list(STRATEGIES))
    loss: str = "gmsd"
    low: float = 1e-3  # the search space of w (search_spaces/<loss>.yaml)
    high: float = 10.0
    epochs: int = 6
    grace: int = 2  # ASHA as the search configures it: epochs // 3, reduction factor 3
    reduction_factor: int = 3
    baseline_seeds: int = 3  # SearchConfig's default
    confirm_seeds: int = 3  # the fixed stage's (SearchConfig.confirm_seeds; the race is the default)
    replicates: int = 1
    # The search stage's seeds: "distinct" (the search's way: vocab.search_seed, one per trial)
    # or "shared" (the search before 2026-12-01: every trial --seed, replicate k --seed + k).
    search_seeds: str = "distinct"
    paired_splits: list[str] = field(default_factory=lambda: ["8+24"])  # search trials + confirmation runs
    paired_candidates: list[str] = field(default_factory=lambda: [RECOMMENDED])
    min_effect: float = 5.0  # the equivalence margin, % of the baseline
    constraint: str = "val_psnr >= -0.2"  # strategy constrained: the budget (search_budget)
    distortion: str = "measured"  # ... and the distortion curve it bounds (tune_vqvae.distortion_curves)
    workers: int = 2
    seed: int = 0
    out_dir: str = "benchmarks/results"

    def validate(self) -> None:
        if self.repeats < 1 or self.workers < 1 or not self.budgets or min(self.budgets) < 5:
            raise UserError("--repeats and --workers must be >= 1, every budget >= 5 (4 paper points + 1)")
        unknown = sorted(set(self.strategies) - set(STRATEGIES))
        if unknown:
            raise UserError(f"unknown strategy {unknown[0]!r}; valid: {', '.join(STRATEGIES)}")
        if self.search_seeds not in SEARCH_SEEDS:
            raise UserError(f"--search-seeds must be one of {', '.join(SEARCH_SEEDS)}, "
                            f"got {self.search_seeds!r}")
        if not 1 <= self.grace < self.epochs:
            raise UserError(f"--grace must be in 1..epochs-1, got {self.grace}")
        for c in self.curves:
            load_curve(c)
        if self.min_effect <= 0 or set(self.paired_candidates) - set(CANDIDATES):
            raise UserError(f"--min-effect must be > 0 and --paired-candidates among {', '.join(CANDIDATES)}")
        for split in self.paired_splits:
            search, confirm, runs = split_of(split)
            least = sequential.least_budget(len(self.paired_candidates), runs)
            if search < 5 or confirm < least or runs < 1:
                raise UserError(f"--paired-splits {split}: need >= 5 search trials, >= 1 baseline run "
                                f"a round and >= {least} confirmation runs")


def split_of(split: str) -> tuple[int, int, int]:
    """"S+C" or "S+CxB" -> (search trials, confirmation runs, the baseline's runs a round)."""
    try:
        search, _, rest = split.partition("+")
        confirm, _, runs = rest.partition("x")
        return int(search), int(confirm), int(runs or 1)
    except ValueError:
        raise UserError(f"--paired-splits {split!r}: give SEARCH+CONFIRM or SEARCH+CONFIRMxBASELINE_RUNS, "
                        "e.g. 8+24,8+20x3") from None
