"""The job-result store: what became of each prediction request and its webhook delivery.

Written by the delivery service (results, attempts) and the gateway (pending jobs for
idempotency); read by the gateway's `GET /v1/jobs/{request_id}`.
"""
