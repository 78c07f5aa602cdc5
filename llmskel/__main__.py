"""``python -m llmskel``: the same as the ``llmskel`` command."""

from llmskel.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
