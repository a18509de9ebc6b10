"""Development support shared by the tests and the bench: a real Kafka broker, a live
registry, sample models and service processes on this machine. Never imported by services."""
