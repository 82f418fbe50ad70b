"""Run-once secrets sidecar for Amazon ECS."""

__version__ = "0.1.0"
