"""modelbus common package: wire contracts, settings base, Kafka codec and telemetry."""
