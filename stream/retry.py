"""The one retry policy: exponential back-off while Triton or Redis is unavailable, applied by each client."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import wraps
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from stream import metrics
from stream.config import Settings
from stream.errors import StoreUnavailable, TritonUnavailable

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class RetryPolicy:
    """How a client waits out an outage; ``max_attempts=None`` retries until the server is back (the worker)."""

    initial_s: float = 0.5
    max_s: float = 10.0
    max_attempts: int | None = None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    @classmethod
    def from_settings(cls, settings: Settings) -> "RetryPolicy":
        """The worker's policy: never gives up, so nothing is skipped or lost."""
        return cls(settings.retry_initial_s, settings.retry_max_s)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        return float(min(self.max_s, self.initial_s * 2 ** (attempt - 1)))

    async def call(self, component: str, call: Callable[[], Awaitable[R]]) -> R:
        """Await ``call()``, retrying with back-off while it raises TritonUnavailable or StoreUnavailable.

        Raises:
            TritonUnavailable, StoreUnavailable: still unavailable after ``max_attempts`` attempts.
        """
        attempt = 0
        while True:
            try:
                return await call()
            except (TritonUnavailable, StoreUnavailable) as exc:
                attempt += 1
                if self.max_attempts is not None and attempt >= self.max_attempts:
                    raise
                delay = self.delay(attempt)
                metrics.retries_total.labels(component).inc()
                log.warning(
                    "%s unavailable (attempt %d), retrying in %.1fs: %s", component, attempt, delay, exc
                )
                await self.sleep(delay)


NO_RETRY = RetryPolicy(max_attempts=1)


class Retrying(Protocol):
    """A client that carries its retry policy."""

    @property
    def retry(self) -> RetryPolicy: ...


S = TypeVar("S", bound=Retrying)


Method = Callable[Concatenate[S, P], Coroutine[Any, Any, R]]


def retried(component: str) -> Callable[[Method[S, P, R]], Method[S, P, R]]:
    """Make a client method retry under the client's own :class:`RetryPolicy` (``component`` labels metrics)."""

    def decorate(method: Method[S, P, R]) -> Method[S, P, R]:
        @wraps(method)
        async def with_retries(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            return await self.retry.call(component, lambda: method(self, *args, **kwargs))

        return with_retries

    return decorate
