"""``python -m diffcheck``: the same command line as the ``diffcheck`` script."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="diffcheck")
