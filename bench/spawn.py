"""Start one command, wait for it, and write its wall time, exit status and peak RSS as JSON.

    python spawn.py RESULT.json TIMEOUT_SECONDS COMMAND [ARG...]

A process's peak RSS (``ru_maxrss``) includes the memory of the process it was forked from: the kernel keeps the
high-water mark of the address space that ``exec`` replaces. Spawned straight from the benchmark, which holds a
moto server, every case would report the benchmark's own size. This launcher is a fresh interpreter that imports
nothing beyond ``os``, ``sys``, ``time``, ``json`` and ``signal``, so what it passes on is a few MiB, below every
case measured. ``os.wait4`` reports the child's peak together with the descendants it waited for (the shell loop's
``aws`` processes).
"""

import json
import os
import signal
import sys
import time

result_path, timeout = sys.argv[1], float(sys.argv[2])
argv = sys.argv[3:]
started = time.perf_counter()
pid = os.posix_spawn(argv[0], argv, os.environ)
signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))
signal.setitimer(signal.ITIMER_REAL, timeout)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
signal.setitimer(signal.ITIMER_REAL, 0)
with open(result_path, "w") as f:
    json.dump({"wall_s": wall, "exit_code": os.waitstatus_to_exitcode(status), "peak_rss_kib": usage.ru_maxrss}, f)
