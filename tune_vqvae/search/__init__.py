"""Search the weight w of `mse + w * L` with Optuna, each trial a VQ-VAE run under Ray Tune.

    python -m tune_vqvae.search --loss gmsd               # one loss, a local Ray cluster
    python -m tune_vqvae.search --loss all --address auto # six searches on a running cluster
    python -m tune_vqvae.search --smoke                   # tiny end-to-end demo, CPU, offline

Each loss is its own Ray Tune experiment with its own Optuna study (one journal file for
the search); the experiments run concurrently, sharing the cluster. Every search also
runs one plain-MSE baseline trial, the reference for every comparison.

Inside (private modules behind this small public surface):

    _spaces       search-space files (search_spaces/*.yaml), validated on load
    _optuna       the define-by-run space, WeightSampler (GP on log w), WeightSearch, journal
    _scheduler    ASHA that never stops the reference points
    _config       SearchConfig (search.json) and what the trials get from it
    _cluster      --address or a private local Ray; resources per trial
    _experiments  experiment directories, the one Tuner factory, restore
    _runner       experiments in threads, progress lines, Ctrl-C
    _trackers     --log-to mlflow / wandb through Ray Tune's tracker callbacks
    _results      rows, best w and gains, the table, results.csv / results.json
    _compat       every private Ray/Optuna attribute we touch
    _args         the flags and --smoke's defaults
    _cli          flags -> a checked Plan -> run

The experiment directory <storage-path>/<name>/ holds:

    search.json          the settings of the search (what --resume continues)
    optuna_journal.log   the Optuna studies, one per loss (optuna-dashboard reads it)
    baseline/, <loss>/   the Ray Tune experiments: one directory per trial with its
                         TensorBoard events, progress.csv and checkpoints
    results.csv, results.json   all trials and the best w per loss (written atomically)
"""

from ._cli import main
from ._config import SearchConfig
from ._optuna import WeightSampler, WeightSearch, WeightSpace, journal_storage
from ._scheduler import ProtectedASHA
from ._spaces import SearchSpace, load_space

__all__ = ["main", "SearchConfig", "SearchSpace", "load_space", "WeightSpace", "WeightSampler",
           "WeightSearch", "ProtectedASHA", "journal_storage"]
