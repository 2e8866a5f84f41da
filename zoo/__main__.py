"""``python -m zoo ...`` is the same CLI as ``facezoo ...``."""

from zoo.cli import main

raise SystemExit(main())
