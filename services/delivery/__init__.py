"""Webhook delivery: records predictions as job results and delivers them by signed webhook."""
