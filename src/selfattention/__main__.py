"""``python -m selfattention`` runs the command line."""

from selfattention.cli import main

raise SystemExit(main())
