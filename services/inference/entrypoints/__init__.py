"""How the workers are driven: the Kafka consume loop, model events, health HTTP, the CLI."""
