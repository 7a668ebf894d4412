"""`python -m services.worker`: the same as the `jobstream-worker` console script."""

from services.worker.app import main

main()
