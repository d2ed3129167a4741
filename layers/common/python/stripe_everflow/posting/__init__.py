"""The poster stage: postback jobs sent to Everflow exactly once, refunds and disputes applied."""
