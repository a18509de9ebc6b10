"""The HTTP gateway: authenticates callers, validates inputs, publishes jobs to `requests`."""
