"""wavenet_cli."""
