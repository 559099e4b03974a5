"""The data plane: ASGI app, gRPC servicer, repository, batching, workers and metrics."""
