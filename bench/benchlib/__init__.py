"""seldon-deploy benchmark harness (Python 3.11 standard library only)."""
