"""How the delivery service is started: the worker process and its health endpoints."""
