"""``python -m nlmeans``: the command line."""

from .cli.main import main

main(prog_name="nlmeans")
