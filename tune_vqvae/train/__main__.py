"""`python -m tune_vqvae.train`: one training run (the flags are in _cli.py)."""

import sys

from tune_vqvae.train._cli import main

if __name__ == "__main__":
    sys.exit(main())
