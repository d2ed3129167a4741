"""Adapters: the only modules that touch botocore, requests or the stripe library."""
