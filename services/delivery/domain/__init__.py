"""Pure delivery rules: backoff, callback URL policy, what an attempt's result means."""
