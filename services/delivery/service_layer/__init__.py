"""Use cases of the delivery service: record predictions, deliver due webhooks."""
