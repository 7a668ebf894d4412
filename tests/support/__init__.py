"""Helpers shared by every test: our own redis-server processes, free ports, `eventually`."""
