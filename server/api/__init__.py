"""One router per resource: health (and metrics), models, synthesize, stream (WebSocket)."""
