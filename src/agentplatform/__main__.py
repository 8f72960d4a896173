"""`python -m agentplatform` runs the CLI."""

from agentplatform.cli import main

main()
