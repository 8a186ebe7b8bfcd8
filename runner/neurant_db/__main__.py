"""`python -m neurant_db`: the same command line as `neurant-db`."""

from .cli import main

main()
