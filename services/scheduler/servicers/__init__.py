"""The scheduler's gRPC servicers: thin translations between protos and store calls."""
