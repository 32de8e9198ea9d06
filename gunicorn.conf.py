"""gunicorn reads this file from the working directory (issue 20, core/ops.py).

With PROMETHEUS_MULTIPROC_DIR set (an empty folder, emptied before each start), every worker
writes its metrics there and /metrics on any worker sums them; a worker that exits has its
live gauges dropped here. Each worker, once it has loaded the application, puts its start-up
heap out of the garbage collector's reach (core/ops.py: settle_heap). Nothing else is
configured: the command line decides the rest.
"""

import os


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

        GunicornInternalPrometheusMetrics.mark_process_dead_on_child_exit(worker.pid)


def post_worker_init(worker):
    from core.ops import settle_heap

    settle_heap()
