"""The task's cluster and family, for the metrics' dimensions, from the ECS task metadata endpoint version 4.

ECS sets ``ECS_CONTAINER_METADATA_URI_V4`` in every container; ``${ECS_CONTAINER_METADATA_URI_V4}/task``
answers a JSON object whose ``Cluster`` is the cluster's ARN or short name and ``Family`` the task
definition's family (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-metadata-endpoint-v4.html;
the names are the json tags of the ECS agent's task response, agent/handlers/v2/response.go).

Read in a background thread from start-up, with a short timeout, so that the run does not wait for it: a
missing, slow or broken endpoint only leaves those dimensions out, with a log line saying why.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from sidecar.deadline import Clock
from sidecar.metrics import Task, cluster_name, dimension_value

if TYPE_CHECKING:
    from structlog.typing import FilteringBoundLogger

ENV: Final = "ECS_CONTAINER_METADATA_URI_V4"
TIMEOUT_SECONDS: Final = 1.0  # a link-local endpoint answers in milliseconds
MAX_RESPONSE_BYTES: Final = 1024 * 1024


def parse_task(body: bytes) -> tuple[Task, str | None]:
    """The dimensions in a ``/task`` response, and what is wrong with it (None: nothing). Pure."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return Task(), "the /task response is not JSON"
    if not isinstance(document, dict):
        return Task(), "the /task response is not a JSON object"
    raw_cluster, raw_family = document.get("Cluster"), document.get("Family")
    cluster = dimension_value(cluster_name(raw_cluster)) if isinstance(raw_cluster, str) else None
    family = dimension_value(raw_family)
    missing = [key for key, value in (("Cluster", cluster), ("Family", family)) if value is None]
    problem = f"the /task response has no usable {' or '.join(missing)}" if missing else None
    return Task(cluster, family), problem


class TaskMetadata:
    """One read of the endpoint, begun by ``start`` and waited for, within bounds, by ``task``."""

    def __init__(self, environ: Mapping[str, str], log: FilteringBoundLogger, *,
                 timeout: float = TIMEOUT_SECONDS, clock: Clock = time.monotonic) -> None:
        self._uri = environ.get(ENV, "")
        self._log = log
        self._timeout = timeout
        self._clock = clock
        self._ends = clock() + timeout
        self._answered = threading.Event()
        self._task = Task()
        self._problem: str | None = None
        self._told = False

    def start(self) -> TaskMetadata:
        if not self._uri:
            self._answered.set()
        else:
            self._ends = self._clock() + self._timeout
            threading.Thread(target=self._read, name="task-metadata", daemon=True).start()
        return self

    def task(self, wait: float) -> Task:
        """The dimensions, waiting at most ``wait`` seconds and never past the read's own timeout. The first
        time they are asked for without both, a log line says why."""
        self._answered.wait(max(0.0, min(wait, self._ends - self._clock())))
        if not self._answered.is_set():
            self._tell("warning", self._no_answer())
            return Task()
        if not self._uri:
            self._tell("debug", f"{ENV} is not set (not running on ECS)")
        elif self._problem:
            self._tell("warning", self._problem)
        return self._task

    def _no_answer(self) -> str:
        return f"no answer within {self._timeout:g} s"

    def _tell(self, level: str, reason: str) -> None:
        if self._told:
            return
        self._told = True
        getattr(self._log, level)("task_metadata_unavailable", reason=reason,
                                  effect="metrics without the ClusterName and TaskDefinitionFamily dimensions")

    def _read(self) -> None:
        try:
            # No proxy: the endpoint is link-local, and an HTTP_PROXY meant for the internet must not see it.
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(self._uri.rstrip("/") + "/task", timeout=self._timeout) as response:
                body = response.read(MAX_RESPONSE_BYTES + 1)
            if len(body) > MAX_RESPONSE_BYTES:
                self._problem = f"the /task response is larger than {MAX_RESPONSE_BYTES} bytes"
            else:
                self._task, self._problem = parse_task(body)
        except urllib.error.HTTPError as exc:
            self._problem = f"the endpoint answered HTTP {exc.code}"
        except (OSError, ValueError) as exc:  # URLError, timeouts and resets are OSErrors; a bad URL a ValueError
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            self._problem = (self._no_answer() if isinstance(reason, TimeoutError)
                             else f"the endpoint could not be read: {type(reason).__name__}")
        finally:
            self._answered.set()
