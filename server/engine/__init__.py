"""server.engine.engine."""
