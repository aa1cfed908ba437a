"""Where a sweep's points run: Dask distributed (a local cluster by default, or an existing one),
or Dask's synchronous scheduler in this process (tests, debugging).

Both offer :meth:`Executor.run`: submit the first tasks, call ``done(task, outcome)`` as each
finishes, and submit whatever tasks ``done`` returns (a search's next probe), until none are left.
A task is ``(PointTask, resources)``; an outcome is :func:`fabric.sweep.point.run_point`'s dict.
A task whose worker died is an outcome with status failed and the reason Dask gave.

Emulation points hold the Dask worker resource ``emulator`` (:data:`~fabric.sweep.engines.EMULATOR_RESOURCE`)
while they run. The local cluster gives exactly one of its workers one unit, so at most one
emulation runs on this machine at a time while simulation points fill every other worker; on an
existing cluster each machine must offer one unit in total (docs/sweeps.md says how to start its
workers), and :meth:`DaskExecutor.check_resources` refuses a cluster that offers none, or more than
one on a machine.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict, deque
from contextlib import contextmanager
from typing import Callable, Iterator

from fabric.errors import EnvironmentNotReady
from fabric.sweep.engines import EMULATOR_RESOURCE
from fabric.sweep.point import PointTask, run_point

Task = tuple[PointTask, dict | None]
Done = Callable[[PointTask, dict], list[Task]]


class Executor:
    """Runs point tasks through ``runner`` (None: each engine's real runner)."""

    description = ""

    def __init__(self, runner=None):
        self.runner = runner

    def run(self, initial: list[Task], done: Done) -> None:
        raise NotImplementedError

    def check_resources(self, engines: set[str]) -> None:
        """Refuse a cluster that cannot run these engines as the sweep requires."""

    def after_close(self, cleanup: Callable[[], None]) -> None:
        """Call ``cleanup`` once no worker can still be running a point of an interrupted sweep: after a
        local cluster's worker processes are killed and joined. Elsewhere nothing: a point interrupted
        in this process has cleaned up already, and a worker of an existing cluster finishes (or
        cleans up) the point it was running on its own."""


class SynchronousExecutor(Executor):
    """Each point in this process, one after the other, through Dask's synchronous scheduler."""

    description = "Dask synchronous scheduler (this process, one point at a time)"

    def run(self, initial: list[Task], done: Done) -> None:
        import dask

        queue = deque(initial)
        while queue:
            task, _resources = queue.popleft()
            outcome = dask.delayed(run_point, pure=False)(task, self.runner).compute(scheduler="synchronous")
            queue.extend(done(task, outcome))


class DaskExecutor(Executor):
    """Points as tasks on a Dask distributed cluster, emulations holding the emulator resource."""

    def __init__(self, client=None, runner=None, description: str = "", start=None):
        super().__init__(runner)
        self._client = client
        self._start = start            # creates the client on first use (a local cluster)
        self.description = description or f"Dask cluster at {client.scheduler.address}"

    @property
    def client(self):
        if self._client is None:
            self._client = self._start()
        return self._client

    @classmethod
    @contextmanager
    def local(cls, workers: int | None = None, processes: bool = True, runner=None) -> Iterator[DaskExecutor]:
        """A cluster on this machine: ``workers`` (default: one per core) single-threaded workers,
        the first offering one unit of the emulator resource. Started when the first point is
        submitted (a sweep whose points are all in DIR starts none); closed on exit."""
        from distributed import Client, Nanny, Scheduler, SpecCluster, Worker

        n = max(1, workers or os.cpu_count() or 1)
        worker_cls = Nanny if processes else Worker
        # No memory limit: the simulator's memory is in its ns-3 child, which Dask does not see, and
        # the engines refuse runs that would not fit before they start.
        specs = {f"sweep-{i}": {"cls": worker_cls,
                                "options": {"nthreads": 1, "memory_limit": 0, "silence_logs": logging.ERROR,
                                            "resources": {EMULATOR_RESOURCE: 1} if i == 0 else {}}}
                 for i in range(n)}
        made: list = []

        def start():
            cluster = SpecCluster(workers=specs, scheduler={"cls": Scheduler, "options": {"dashboard": False,
                                                                                          "dashboard_address": ":0"}},
                                  silence_logs=logging.ERROR, name="fabric-sweep")
            made.append(cluster)
            client = Client(cluster, set_as_default=False)
            made.append(client)
            client.wait_for_workers(n)
            return client

        kind = "process" if processes else "thread"
        executor = cls(None, runner, f"local Dask cluster ({n} worker {kind}{'es' if n > 1 and processes else ''}"
                                     f"{'s' if n > 1 and not processes else ''}, one emulation at a time)", start)
        executor._local = True
        if processes:
            executor._cleanups = []
        try:
            yield executor
        finally:
            for thing in reversed(made):
                thing.close()
            # Only now (closing joined the worker processes) can nothing write where a cleanup removes.
            for cleanup in executor._cleanups or ():
                cleanup()

    def after_close(self, cleanup: Callable[[], None]) -> None:
        if self._cleanups is not None:
            self._cleanups.append(cleanup)

    @classmethod
    @contextmanager
    def connect(cls, address: str, runner=None) -> Iterator[DaskExecutor]:
        """An existing cluster's scheduler at ``address`` (tcp://host:8786)."""
        from distributed import Client

        try:
            client = Client(address, timeout="20s", set_as_default=False)
        except OSError as exc:
            raise EnvironmentNotReady(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        try:
            yield cls(client, runner, f"Dask cluster at {address}")
        finally:
            client.close()

    _local = False
    _cleanups: list | None = None   # a local cluster of worker processes: what to do once it is closed

    def check_resources(self, engines: set[str]) -> None:
        if "emu" not in engines or self._local:  # the local cluster offers exactly one unit
            return
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        per_host: dict[str, float] = defaultdict(float)
        for info in workers.values():
            per_host[info.get("host", "?")] += float((info.get("resources") or {}).get(EMULATOR_RESOURCE, 0))
        if not any(per_host.values()):
            raise EnvironmentNotReady(f"no worker of the Dask cluster offers the '{EMULATOR_RESOURCE}' resource, so "
                                      f"emulation points would never start; on each emulation machine start one "
                                      f"worker with --resources {EMULATOR_RESOURCE}=1 (docs/sweeps.md)")
        crowded = {h: u for h, u in per_host.items() if u > 1}
        if crowded:
            host, units = next(iter(crowded.items()))
            raise EnvironmentNotReady(f"the workers on {host} offer {units:g} units of '{EMULATOR_RESOURCE}' in "
                                      f"total; an emulation needs the whole machine, so offer one unit per machine "
                                      f"(docs/sweeps.md)")

    def run(self, initial: list[Task], done: Done) -> None:
        from distributed import as_completed

        tasks, live = {}, {}

        def submit(task: PointTask, resources: dict | None):
            fut = self.client.submit(run_point, task, self.runner, key=f"sweep-point-{task.point.hash}",
                                     resources=resources, pure=False, retries=0)
            tasks[fut.key], live[fut.key] = task, fut
            return fut

        pending = as_completed([submit(t, r) for t, r in initial], loop=self.client.loop)
        try:
            for fut in pending:
                task = tasks.pop(fut.key)
                live.pop(fut.key, None)
                try:
                    outcome = fut.result()
                except Exception as exc:  # the worker died, or Dask gave up on the task
                    outcome = {"hash": task.point.hash, "status": "failed", "archive": None, "worker": None,
                               "reason": f"the Dask worker failed: {type(exc).__name__}: {exc}", "wall_time_s": None}
                fut.release()
                for t, r in done(task, outcome):
                    pending.add(submit(t, r))
        except BaseException:
            pending.clear()
            if live:
                self.client.cancel(list(live.values()))
            raise
