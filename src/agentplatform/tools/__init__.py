"""Tools an agent may call: a small ``Tool`` protocol, a registry, built-ins and MCP servers."""
