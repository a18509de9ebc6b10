"""SIGKILL a feedback process the moment its store commits new rows.

Run as its own process (`python -m tests.integration.feedback.kill_on_commit PID URL
SECONDS`), so no other thread holds the interpreter when the commit shows: the kill lands
a millisecond or two after it, before the process has produced that batch's labels.
Prints "armed" once it has seen the store as it was; exits 0 after the kill, 1 if the
store took no new rows in SECONDS.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import sqlalchemy as sa

from services.feedback.adapters.tables import FEEDBACK, PREDICTIONS, REQUESTS
from shared.db import make_engine


def kill_on_commit(pid: int, database_url: str, seconds: float) -> bool:
    engine = make_engine(database_url)
    rows = sa.select(
        *(
            sa.select(sa.func.count()).select_from(table).scalar_subquery()
            for table in (REQUESTS, PREDICTIONS, FEEDBACK)
        )
    )
    deadline = time.monotonic() + seconds
    try:
        with engine.connect() as connection:
            before = sum(connection.execute(rows).one())
            connection.rollback()  # each look sees the newest commit
            print("armed", flush=True)
            while time.monotonic() < deadline:
                now = sum(connection.execute(rows).one())
                connection.rollback()
                if now > before:  # looks back to back: the query's round trip paces them
                    os.kill(pid, signal.SIGKILL)
                    return True
        return False
    finally:
        engine.dispose()


if __name__ == "__main__":
    pid, url, seconds = sys.argv[1:]
    sys.exit(0 if kill_on_commit(int(pid), url, float(seconds)) else 1)
