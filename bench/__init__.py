"""Benchmarks (`make bench`): throughput, latency and memory, measured on our own Redis. Never part
of the test suite."""
