"""``python -m bench``: run zoo's benchmark suite (see ``bench/__init__.py`` and the README)."""

from .cli import main

raise SystemExit(main())
