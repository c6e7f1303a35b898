"""``python -m tinyrnn``: the same as the ``tinyrnn`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
