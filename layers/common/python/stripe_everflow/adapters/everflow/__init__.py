"""Everflow over HTTP: postbacks to the tracking domain, and the Network API."""
