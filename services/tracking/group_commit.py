"""Group commit: concurrent callers share one write (one transaction) instead of one each.

Each caller hands its item and awaits its own result; a writer task takes every item waiting,
writes them together, and answers each caller only once that write is done. Items arriving
while a write is in flight wait for the next one, so batches grow with the load and no caller
waits for a timer. A failed write fails each of its callers (nothing of it is committed)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(self, write: Callable[[list[T]], Awaitable[Sequence[R]]], *, max_batch: int = 500) -> None:
        self._write = write
        self._max_batch = max_batch
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """``item``'s result, once it is written with the others waiting now."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None:  # started on demand: it ends when nothing waits
            self._writer = asyncio.create_task(self._write_all(), name="group-commit")
        return await future

    async def _write_all(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:self._max_batch], self._waiting[self._max_batch:]
                try:
                    results = await self._write([item for item, _ in batch])
                except Exception as error:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():  # its caller may have gone (client disconnected)
                        future.set_result(result)
        finally:
            self._writer = None
            left, self._waiting = [*batch, *self._waiting], []
            for _, future in left:  # only when cancelled: never leave a caller hanging
                if not future.done():
                    future.set_exception(RuntimeError("the writer stopped"))
