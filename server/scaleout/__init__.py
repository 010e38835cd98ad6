"""Scale-out on Ray Serve: the unchanged app in many replicas behind one HTTP endpoint.

Imports Ray only where it is needed, so the rest of the server never depends on it.
`replica.py` is the deployment, `metrics_bridge.py` carries each replica's engine metrics
into Ray's metrics, `launch.py` is `wavenet serve --ray`.
"""
