"""Security primitives: tokens, rate limits, headers."""
