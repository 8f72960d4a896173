"""agentplatform: a self-hostable AI agent platform."""

__version__ = "0.1.0"
