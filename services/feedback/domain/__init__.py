"""Pure rules of feedback labelling, without Kafka, HTTP or a database."""
