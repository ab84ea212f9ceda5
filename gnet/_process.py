"""What a command needs from the operating system, kept apart from the training loop.

* :class:`RunLock`: an exclusive lock on a run folder while a run writes to it, held on an open file, that notices
  when its lock file is removed or replaced (:meth:`RunLock.check`);
* :class:`StopRequest`: Ctrl-C, SIGTERM and SIGHUP turned into a flag the loop reads after each step;
  :func:`signals_held` keeps an abort out of a file write; :func:`exit_code` is the shell's 128 + signal number;
* :func:`start_workers`, :func:`detach_worker` and :func:`worker_failures`: DataLoader workers that no stop signal
  can kill mid-batch, and one line when one dies anyway;
* :func:`run_cli`, :func:`one_line`, :func:`quiet_interrupt_while_starting`: the outline the commands share.

This module imports nothing heavy (no torch), so that ``gnet/__init__.py`` can use it before torch loads.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import stat
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "LostLockError",
    "RunFolderError",
    "RunInUseError",
    "RunLock",
    "StopNow",
    "StopRequest",
    "WorkerDiedError",
    "detach_worker",
    "exit_code",
    "one_line",
    "open_plain_file",
    "quiet_interrupt_while_starting",
    "run_cli",
    "signals_held",
    "start_workers",
    "worker_died",
    "worker_failures",
]

#: The signals that stop a run with a checkpoint: Ctrl-C, a scheduler's SIGTERM, an SSH hang-up.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def exit_code(signum: int) -> int:
    """The exit code of a command stopped by ``signum``: 128 + its number, as shells report it (130, 143, 129)."""
    return 128 + int(signum)


# ------------------------------------------------------------ the run folder's lock
class RunFolderError(Exception):
    """The run folder cannot be used safely; the message says why."""


class RunInUseError(RunFolderError):
    """Another process is writing to the run folder."""


class LostLockError(RunFolderError):
    """The lock file was removed or replaced while this run held it: another run may be writing there."""


class RunLock:
    """An exclusive lock (``fcntl.flock``) on ``RUN_DIR/.lock`` for as long as a run writes to the folder.

    The lock lives on the open file, not on the path: the kernel releases it when the process ends, however it
    ends, so a killed run never leaves a stale lock. Anyone can unlink or replace the path, though, and a second
    run would then lock a new file; so a writer calls :meth:`check` before every write, which raises
    :class:`LostLockError` unless the path still names the file it locked. The file is opened with ``O_NOFOLLOW``
    and must be a plain file with one name, so a link placed there is refused, never written through. It holds
    the holder's pid and start time, for the message a second run gets.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / ".lock"
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None

    def __enter__(self) -> RunLock:
        import fcntl

        self._created = not self.path.parent.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = open_plain_file(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunInUseError(
                f"{self.path.parent} is in use by {holder}: wait for that run to end, or choose another --out"
            ) from None
        started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} (started {started})\n".encode(), 0)
        info = os.fstat(fd)
        self._fd, self._identity = fd, (info.st_dev, info.st_ino)
        return self

    def holds(self) -> bool:
        """True while ``RUN_DIR/.lock`` is still the file this process locked."""
        try:
            info = os.lstat(self.path)
        except OSError:
            return False
        return (info.st_dev, info.st_ino) == self._identity

    def check(self) -> None:
        """Raise :class:`LostLockError` unless this process still holds the folder's lock (call before a write)."""
        if not self.holds():
            raise LostLockError(
                f"{self.path} was removed or replaced while this run held it, so another run may be writing to "
                f"{self.path.parent}: this run stopped without writing more. Check that no other run uses the folder, "
                "then continue with --resume"
            )

    def __exit__(self, *exc: object) -> None:
        # A run that stopped before writing anything leaves no empty folder behind (bad data, bad settings).
        try:
            if self._created and self.holds() and {e.name for e in os.scandir(self.path.parent)} == {self.path.name}:
                self.path.unlink()
                self.path.parent.rmdir()
        finally:
            if self._fd is not None:
                os.close(self._fd)  # closing releases the lock


def open_plain_file(path: Path, flags: int) -> int:
    """``os.open`` that never follows a link at ``path`` and refuses anything but a plain file with one name.

    A symbolic link fails with ELOOP (``O_NOFOLLOW``); a hard link to a file elsewhere has two names, and a FIFO
    or device is not a plain file: writing to any of them would write outside the folder.
    """
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError as error:
        if os.path.islink(path):
            raise RunFolderError(f"{path} is a symbolic link: remove it (gnet never writes through a link)") from None
        raise error
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        kind = "a second name of another file" if stat.S_ISREG(info.st_mode) else "not a plain file"
        raise RunFolderError(f"{path} is {kind}: remove it (gnet never writes through it)")
    return fd


# ------------------------------------------------------------ stop signals
class StopNow(KeyboardInterrupt):
    """A stop that cannot wait for the end of a step: a second stop signal, or one during set-up."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopRequest:
    """Turns the first stop signal into a flag the loop checks after each step; a second one raises :class:`StopNow`.

    With ``immediate=True`` (set-up, when there is nothing to checkpoint yet) the first signal raises at once.
    SIGHUP means the terminal is gone: output that went to it goes to ``/dev/null`` from then on, so that writing
    a line cannot fail the checkpoint that follows.
    """

    def __init__(self, *, immediate: bool = False) -> None:
        self.requested = False
        self.immediate = immediate
        self.signum: int = signal.SIGINT
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGHUP:
            _leave_the_terminal()
        first = not self.requested
        self.requested, self.signum = True, signum
        if self.immediate or not first:
            if _Held.depth:  # a file is being written: abort once it is whole
                _Held.pending = StopNow(signum)
                return
            raise StopNow(signum)
        _print_quietly(f"\n{signal.Signals(signum).name}: saving a checkpoint after this step (again to abort).")

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _print_quietly(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # a closed or hung-up terminal: the exit code still says it
        print(message, file=sys.stderr, flush=True)


def _leave_the_terminal() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            with contextlib.suppress(OSError):
                if os.isatty(fd):
                    os.dup2(devnull, fd)
    finally:
        os.close(devnull)


class _Held:
    """How deep the main thread is in :func:`signals_held`, and the abort that waits for it to end."""

    depth = 0
    pending: StopNow | None = None


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold an abort back while the block runs (a file write): a stop signal that would abort raises after it.

    Python runs signal handlers in the main thread between bytecodes, so a handler that raises could otherwise
    land in the middle of ``torch.save``. A first stop signal only sets the flag and needs no holding.
    """
    _Held.depth += 1
    try:
        yield
    finally:
        _Held.depth -= 1
    if _Held.depth == 0 and _Held.pending is not None:
        pending, _Held.pending = _Held.pending, None
        raise pending


# ------------------------------------------------------------ DataLoader workers
def start_workers(loader: Any) -> Iterator:
    """``iter(loader)`` (a DataLoader), with the stop signals held back while its worker processes are forked.

    A signal that arrives meanwhile waits, and reaches the main process once the workers exist; the workers
    themselves never see it (:func:`detach_worker`).
    """
    if loader.num_workers == 0 or threading.current_thread() is not threading.main_thread():
        return iter(loader)
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # forked children inherit the mask
    try:
        return iter(loader)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def detach_worker(worker_id: int) -> None:
    """Move a DataLoader worker into a process group of its own.

    Ctrl-C in a terminal, a hang-up and a batch scheduler's SIGTERM go to the whole process group. Without this
    they would kill the workers mid-batch, and the main process would crash on a dead worker instead of saving a
    checkpoint. Out of the group, only the main process hears them; it stops the workers itself, and they still
    exit if it dies. The worker was forked with the signals blocked (:func:`start_workers`): what reached the group
    before it left is discarded, and its handlers are the defaults again, not the main process's.
    """
    os.setpgid(0, 0)
    defaults = {
        signal.SIGINT: signal.default_int_handler,
        signal.SIGTERM: signal.SIG_DFL,
        signal.SIGHUP: signal.SIG_DFL,
    }
    for signum, handler in defaults.items():
        signal.signal(signum, signal.SIG_IGN)  # discards a pending instance (POSIX)
        signal.signal(signum, handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


class WorkerDiedError(RuntimeError):
    """A DataLoader worker process died (killed, out of memory); the message says which and how."""


def worker_failures(batches: Iterable) -> Iterator:
    """``batches``, with a dead DataLoader worker turned into :class:`WorkerDiedError` with one line.

    PyTorch reports a killed worker as a RuntimeError naming it, or, when the pipe broke first, as EOFError or
    ConnectionResetError from deep inside multiprocessing.
    """
    iterator = iter(batches)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except (EOFError, ConnectionError) as error:
            raise WorkerDiedError(
                f"a data-loading worker process died (its pipe closed: {type(error).__name__})"
            ) from None
        except RuntimeError as error:
            if not worker_died(error):
                raise
            raise WorkerDiedError(f"a data-loading worker process died ({one_line(error)})") from None
        yield batch


def worker_died(error: BaseException) -> bool:
    """Whether ``error`` is PyTorch's report of a DataLoader worker that died (not an error raised inside one)."""
    text = str(error)
    return isinstance(error, RuntimeError) and "DataLoader worker" in text and "Original Traceback" not in text


# ------------------------------------------------------------ the commands' outline
def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line: a DataLoader worker's re-raised error keeps only its own message."""
    text = str(error)
    if "Original Traceback" in text:
        lines = [line for line in text.strip().splitlines() if line.strip()]
        text = lines[-1].split(": ", 1)[-1] if lines else text
    return text


@contextlib.contextmanager
def printable_output() -> Iterator[None]:
    """Standard output and error that print any file or class name: a name that is not valid in their encoding
    (a non-UTF-8 file name under a strict UTF-8 stdout) is written with backslash escapes instead of failing."""
    changed = []
    for stream in (sys.stdout, sys.stderr):
        errors = getattr(stream, "errors", None)
        if errors in ("strict", "surrogateescape") and hasattr(stream, "reconfigure"):
            with contextlib.suppress(Exception):
                stream.reconfigure(errors="backslashreplace")
                changed.append((stream, errors))
    try:
        yield
    finally:
        for stream, errors in changed:
            with contextlib.suppress(Exception):
                stream.reconfigure(errors=errors)


def run_cli(prog: str, parser, body, argv) -> int:
    """A command's outline: parse ``argv`` with ``parser``, return ``body(args)``'s exit code.

    ``--help`` and argparse's own usage errors return argparse's code (it has printed why); a stop signal becomes
    one line and 128 + its number (130 for Ctrl-C), never a traceback; any name prints (:func:`printable_output`).
    """
    with printable_output():
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit_request:
            return int(exit_request.code or 0)
        with StopRequest(immediate=True):  # nothing to save: any stop signal ends the command at once
            try:
                return body(args)
            except KeyboardInterrupt as stop:
                signum = getattr(stop, "signum", signal.SIGINT)
                by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
                _print_quietly(f"{prog}: interrupted{by}")
                return exit_code(signum)


_COMMANDS = {"gnet-train": "gnet.train", "gnet-evaluate": "gnet.evaluate", "gnet-predict": "gnet.predict"}


def quiet_interrupt_while_starting() -> None:
    """In a gnet command, make a stop signal while the libraries load (seconds, for torch) one line and its code.

    Only when this process is one of the commands (``gnet-train ...`` or ``python -m gnet.train ...``); a program
    that merely imports gnet keeps Python's own handling. Ctrl-C keeps Python's exit (by SIGINT: 130); SIGTERM and
    SIGHUP, which would kill the process without a word, exit with 143 and 129. The command's ``main`` installs its
    own handlers once it runs.
    """
    argv = getattr(sys, "orig_argv", sys.argv)
    command = next((name for name in _COMMANDS if argv and Path(sys.argv[0] or "").name == name), None)
    if command is None and "-m" in argv[:-1]:
        module = argv[argv.index("-m") + 1]
        command = next((name for name, mod in _COMMANDS.items() if mod == module), None)
    if command is None:
        return
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, traceback: Any) -> None:
        if not issubclass(kind, KeyboardInterrupt):
            previous(kind, value, traceback)
            return
        signum = getattr(value, "signum", signal.SIGINT)
        by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
        _print_quietly(f"{command}: interrupted{by} while starting")
        if signum != signal.SIGINT:
            os._exit(exit_code(signum))  # Python would report any KeyboardInterrupt as SIGINT (130)

    def stop_now(signum: int, frame: Any) -> None:
        raise StopNow(signum)

    sys.excepthook = hook
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) is signal.SIG_DFL:  # an ignored signal (nohup) stays ignored
                signal.signal(signum, stop_now)


quiet_interrupt_while_starting()  # at import: gnet/__init__.py imports this module before torch
