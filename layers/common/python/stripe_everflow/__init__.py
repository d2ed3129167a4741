"""Shared code of the Stripe → Everflow bridge, shipped to every function in the CommonLayer.

Modules are split by concern: ``config`` (settings from the environment), ``secrets``
(the bridge secret), ``signature`` (Stripe-Signature verification), ``intake`` (the
webhook acceptance rules), ``messages`` (queue message schemas), ``aws`` (botocore
adapters), ``http`` (API Gateway answers) and ``observability``.
Importing any of them has no side effects: no environment reads, no clients.
"""
