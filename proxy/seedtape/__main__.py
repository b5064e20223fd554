"""``python -m seedtape``: the same command line as ``seedtape``."""

from seedtape.cli import main

main()
