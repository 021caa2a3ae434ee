"""`python -m tune_vqvae.bench`: see tune_vqvae/bench/__init__.py."""

import sys

from tune_vqvae.bench import main

if __name__ == "__main__":
    sys.exit(main())
