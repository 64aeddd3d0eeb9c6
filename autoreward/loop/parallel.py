"""Work in parallel threads that a Ctrl-C does not wait for.

`concurrent.futures`' `with ThreadPoolExecutor(...)` waits for every running task when the
block is left, also when it is left by an interrupt: a Ctrl-C during a round would wait for its
trainings (minutes) and its LLM calls. `parallel_map` waits only while nothing goes wrong in the
calling thread; interrupted, it cancels what has not started and returns at once. The jobs still
running end with their workers, which the executor stops (`WorkerExecutor.stop`).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def parallel_map(function: Callable[[Item], Result], items: Iterable[Item], workers: int) -> list[Result]:
    """`[function(item) for item in items]`, in order, on up to `workers` threads."""
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        futures = [pool.submit(function, item) for item in items]
        return [future.result() for future in futures]
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=False)  # every future is done when no exception was raised
