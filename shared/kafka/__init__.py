"""Kafka adapters: the only place where bytes become typed messages and back."""
