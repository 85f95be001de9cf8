"""``python -m adop``: the ``adop`` command line (``adop.cli``)."""

from adop.cli import main

main()
