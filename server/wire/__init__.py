"""server.wire."""
