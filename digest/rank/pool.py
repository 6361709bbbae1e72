"""Forked helper processes that share a ranking's work, and a paused garbage collector."""

from __future__ import annotations

import gc
import multiprocessing
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection


class Helper:
    """A forked process that works through a share of a job, sending back each result as
    it finishes it; a thread here takes them in at once, since a helper blocked on a full
    pipe would wait for this process to finish its own share."""

    def __init__(self, process: multiprocessing.process.BaseProcess, pipe: Connection) -> None:
        self._process = process
        self._pipe = pipe
        self._results: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._taker: threading.Thread | None = None

    @classmethod
    def start(cls, results: Callable[[], Iterable[object]]) -> Helper | None:
        """A helper sending each of `results()`, or None when no process can be forked.
        Call `listen` once every helper is forked."""
        context = multiprocessing.get_context("fork")
        receiving, sending = context.Pipe(duplex=False)

        def work() -> None:
            receiving.close()
            with sending:
                for result in results():
                    sending.send(result)

        process = context.Process(target=work, name="digest-rank", daemon=True)
        try:
            process.start()
        except (OSError, AssertionError):  # no fork left, or a daemon cannot have children
            receiving.close()
            sending.close()
            return None
        sending.close()
        return cls(process, receiving)

    def listen(self) -> None:
        self._taker = threading.Thread(target=self._take, name="digest-rank", daemon=True)
        self._taker.start()

    def _take(self) -> None:
        while True:
            try:
                self._results.put(self._pipe.recv())
            except (EOFError, OSError):  # done, or failed: receive says None from here on
                self._results.put(None)
                return

    def receive(self) -> object | None:
        """The next result; None once the helper has failed."""
        return self._results.get()

    def close(self) -> None:
        if self._process.is_alive():  # the caller stopped early: the taker sees EOF
            self._process.kill()
        self._process.join()
        if self._taker is not None:
            self._taker.join()
        self._pipe.close()


def split_evenly(blocks: int, helpers: int) -> list[int]:
    """`blocks` split into `helpers` runs as even as can be."""
    if helpers < 1:
        return []
    size, extra = divmod(blocks, helpers)
    return [size + (k < extra) for k in range(helpers) if size + (k < extra)]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Ranking makes hundreds of thousands of records and no reference cycles; the cyclic
    garbage collector, run every 700 allocations, would walk them all again and again
    (a seventh of the time at 10,000 profiles)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def helper_processes(workers: int | None) -> int:
    """How many helper processes to fork: workers - 1, by default one per spare core.

    None in a process running other threads (a scheduler's): a fork copies whatever
    locks they hold, held."""
    if "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
        return 0
    if workers is None:
        cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        workers = len(cores) if cores is not None else (os.cpu_count() or 1)
    return max(0, workers - 1)
