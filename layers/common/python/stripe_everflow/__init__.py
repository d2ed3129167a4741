"""Shared code of the Stripe → Everflow bridge, shipped to every function in the CommonLayer.

Map (a stage imports ``domain``, ``ports``, ``parking``, ``config`` and
``observability``, never another stage or an adapter; the functions' handlers wire
adapters into stages):

- ``domain``: pure rules and queue contracts, no I/O (money, classify, attribution, undo, jobs).
- ``intake``: the webhook stage: the signature, and what is accepted, ignored or refused.
- ``clicks``: the click stage: ``POST /clicks`` requests validated and registered.
- ``matching``: the matcher stage: one Stripe event → its click → postback jobs, or parked.
- ``posting``: the poster stage: one job → Everflow exactly once, refunds and disputes applied.
- ``adapters``: the only code touching botocore, requests or stripe (AWS, Everflow, Stripe).
- ``ports``: the Protocols stages depend on, which adapters implement.
- ``parking``: parked payments sent back to matching, shared by the matching and click stages.
- ``config``: each function's settings, read from its environment and validated at start.
- ``observability``: the Powertools logger and metrics.

Importing any of them has no side effects: no environment reads, no clients.
"""
