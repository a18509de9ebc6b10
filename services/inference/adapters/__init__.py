"""Adapters to the outside world: the registry over HTTP and Kafka records."""
