"""HTTP and WebSocket transports: parse, call a repository or the runtime, serialize."""
