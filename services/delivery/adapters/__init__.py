"""Adapters of the delivery service: HTTP sending, DNS, signing, Kafka, metrics."""
