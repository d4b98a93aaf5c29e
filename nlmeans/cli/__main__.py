"""``python -m nlmeans.cli``: the command line."""

from .main import main

main(prog_name="nlmeans")
