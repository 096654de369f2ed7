"""``python -m diffcheck``: the same command line as the ``diffcheck`` script."""

from .cli import entry

if __name__ == "__main__":
    entry()
