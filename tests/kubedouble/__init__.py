"""A Kubernetes API-server double for tests: real HTTP, the official client's response shapes."""

from .server import ApiServerDouble

__all__ = ["ApiServerDouble"]
