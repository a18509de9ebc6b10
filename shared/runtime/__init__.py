"""The shell every Kafka service runs in: consume loop, commits, health, logs, retries."""
