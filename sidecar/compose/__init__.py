"""Turn an ECS task definition into a docker-compose project, to run the very file you deploy on your machine.

``translate`` is the pure core (a task definition in, a compose document and a list of notes out: what could
not be mapped, what was approximated, what was added for the local run); ``seed`` plans placeholder values for
every secret a sidecar in the task references; ``command`` is the thin I/O edge behind
``secrets-sidecar compose``. docs/run-task-definition-locally.md says what is mapped and what is not.
"""
