"""The webhook stage: Stripe-Signature verification and the acceptance rules."""
