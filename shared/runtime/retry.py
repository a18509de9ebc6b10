"""One retry policy for waits on a dependency that is not up yet (registry, store, broker)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_never,
    stop_when_event_set,
    wait_exponential,
)

FIRST_DELAY_SECONDS = 0.1
MAX_DELAY_SECONDS = 5.0


def backoff_seconds(
    attempt: int, *, first: float = FIRST_DELAY_SECONDS, most: float = MAX_DELAY_SECONDS
) -> float:
    """The delay before retry number `attempt` (1, 2, ...): doubling, capped."""
    return float(wait_exponential(multiplier=first, max=most, exp_base=2)(_state(attempt)))


def _state(attempt: int) -> RetryCallState:
    state = RetryCallState(retry_object=AsyncRetrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    return state


class _Stopping:
    """tenacity's `stop` for an asyncio.Event-like flag: anything with is_set()."""

    def __init__(self, flag: Callable[[], bool]) -> None:
        self._flag = flag

    def is_set(self) -> bool:
        return self._flag()


def retrying(
    *,
    on: tuple[type[BaseException], ...],
    but_not: tuple[type[BaseException], ...] = (),
    log: logging.Logger,
    what: str,
    until: Callable[[], bool] | None = None,
    first: float = FIRST_DELAY_SECONDS,
    most: float = MAX_DELAY_SECONDS,
    on_retry: Callable[[], None] | None = None,
) -> AsyncRetrying:
    """Retry `on` exceptions (`but_not` these) with doubling delays, logging each; gives up
    (re-raising the last error) once `until()` is true, else never."""

    def transient(error: BaseException) -> bool:
        return isinstance(error, on) and not isinstance(error, but_not)

    def warn(state: RetryCallState) -> None:
        if on_retry is not None:
            on_retry()
        error = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "%s failed; retrying",
            what,
            extra={"attempt": state.attempt_number, "error": repr(error), "delay_seconds": delay},
        )

    return AsyncRetrying(
        retry=retry_if_exception(transient),
        wait=wait_exponential(multiplier=first, max=most, exp_base=2),
        stop=stop_never if until is None else stop_when_event_set(_Stopping(until)),  # type: ignore[arg-type]
        before_sleep=warn,
        reraise=True,
    )
