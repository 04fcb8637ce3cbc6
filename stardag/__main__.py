"""`python -m stardag` runs the command line."""

from stardag.cli import main

main()
