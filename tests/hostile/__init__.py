"""The hostile suite: fuzzing, an authorization matrix and malformed input on every route."""
