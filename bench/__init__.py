"""Benchmarks of nlmeans: speed against the peers, quality on the standard set, preset and method studies.

Run each script from the repository root as a module, e.g. ``python -m bench.speed``; the list of scripts, what
each measures and where it writes is in bench/README.md. ``bench._common`` holds what every script shares: the
standard image set, the noise-seed policy, the results folder and the command-line parser.
"""
