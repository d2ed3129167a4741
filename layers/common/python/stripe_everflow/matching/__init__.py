"""The matcher stage: a Stripe event matched to its click and turned into postback jobs."""
