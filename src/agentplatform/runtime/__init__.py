"""The runtime: runs a turn (history → model → events → storage) and carries its events."""
