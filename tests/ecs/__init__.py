"""A harness that runs a task definition on the local Docker engine the way the ECS agent orders it."""
