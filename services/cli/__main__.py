"""`python -m services.cli ...` runs the `jobstream` command."""

from services.cli.main import main

raise SystemExit(main())
