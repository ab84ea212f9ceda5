"""What a training process needs from the operating system, kept apart from the training loop.

* :class:`RunLock`: an exclusive lock on a run folder while a run writes to it;
* :class:`StopRequest`: Ctrl-C and SIGTERM turned into a flag the loop reads after each step;
* :func:`start_workers` and :func:`detach_worker`: DataLoader workers that neither signal can kill mid-batch.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

__all__ = ["RunInUseError", "RunLock", "StopRequest", "detach_worker", "start_workers"]


class RunInUseError(Exception):
    """Another process is writing to the run folder."""


class StopRequest:
    """Turns the first Ctrl-C / SIGTERM into a flag the loop checks after each step; a second one aborts."""

    def __init__(self) -> None:
        self.requested = False
        self.signum: int = signal.SIGINT
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested, self.signum = True, signum
        print(
            f"\n{signal.Signals(signum).name}: saving a checkpoint after this step (again to abort).",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def start_workers(loader: torch.utils.data.DataLoader) -> Iterator:
    """``iter(loader)``, with Ctrl-C and SIGTERM held back while its worker processes are forked.

    A signal that arrives meanwhile waits, and reaches the main process once the workers exist; the workers
    themselves never see it (:func:`detach_worker`).
    """
    if loader.num_workers == 0 or threading.current_thread() is not threading.main_thread():
        return iter(loader)
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        return iter(loader)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def detach_worker(worker_id: int) -> None:
    """Move a DataLoader worker into a process group of its own.

    Ctrl-C in a terminal and a batch scheduler's SIGTERM go to the whole process group. Without this they would kill
    the workers mid-batch, and the main process would crash on a dead worker instead of saving a checkpoint. Out of
    the group, only the main process hears them; it stops the workers itself, and they still exit if it dies.
    The worker was forked with both signals blocked (:func:`start_workers`): what reached the group before it left
    is discarded, and its handlers are the defaults again, not the main process's.
    """
    os.setpgid(0, 0)
    for signum, handler in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
        signal.signal(signum, signal.SIG_IGN)  # discards a pending instance (POSIX)
        signal.signal(signum, handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


class RunLock:
    """An exclusive lock on ``RUN_DIR/.lock`` (``fcntl.flock``) for as long as a run writes to the folder.

    The kernel releases it when the process ends, however it ends, so a killed run never leaves a stale lock.
    The file holds the holder's pid and start time, for the message a second run gets.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / ".lock"
        self._handle: Any = None

    def __enter__(self) -> RunLock:
        import fcntl

        self._created = not self.path.parent.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the whole run
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunInUseError(
                f"{self.path.parent} is in use by {holder}: wait for that run to end, or choose another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        handle.write(f"pid {os.getpid()} (started {started})\n")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc: object) -> None:
        # A run that stopped before writing anything leaves no empty folder behind (bad data, bad settings).
        if self._created and {entry.name for entry in os.scandir(self.path.parent)} == {self.path.name}:
            self.path.unlink()
            self.path.parent.rmdir()
        self._handle.close()  # closing releases the lock


def run_cli(prog: str, parser, body, argv) -> int:
    """A command's outline: parse ``argv`` with ``parser``, return ``body(args)``'s exit code.

    ``--help`` and argparse's own usage errors return argparse's code (it has printed why); Ctrl-C becomes one line
    and exit code 130, never a traceback.
    """
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:
        return int(exit_request.code or 0)
    try:
        return body(args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
