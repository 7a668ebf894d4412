"""The REST gateway: JSON over HTTP to the scheduler's gRPC API, routes from the protos."""
