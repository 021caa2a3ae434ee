"""`python -m analysis EXPDIR...`: the report of a (finished or running) search."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
