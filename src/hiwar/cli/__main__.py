"""`python -m hiwar.cli`: the same as the `hiwar` command."""

from hiwar.cli import main

main()
