"""``python -m adop``: the ``adop`` command line (``adop.cli``)."""

from adop.cli import main

if __name__ == "__main__":
    main()
