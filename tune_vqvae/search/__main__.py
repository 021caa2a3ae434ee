"""`python -m tune_vqvae.search`: see tune_vqvae/search/__init__.py."""

import sys

# The CLI's main from its importable module, not from this __main__: Ray pickles the classes
# and functions it is given (callbacks, samplers) by reference to the module defining them.
from tune_vqvae.search._cli import main

if __name__ == "__main__":
    sys.exit(main())
