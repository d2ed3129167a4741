"""Operator and developer commands of the bridge (`stripe-everflow …`): the local
stack, the demo, and event signing. Never deployed: only ``stripe_everflow`` is."""
