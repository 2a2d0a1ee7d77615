"""Small helpers shared by the Kafka and PostgreSQL runners: paths, processes, ports, locks."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


class LocalStackError(RuntimeError):
    """A local service cannot be started or stopped; the message says what to do."""


def run_dir() -> Path:
    """Where the running stack keeps its data, logs and pid files."""
    return Path(os.environ.get("PORTEVOIX_RUN_DIR") or REPO_ROOT / ".portevoix").resolve()


def cache_dir() -> Path:
    """Downloads that outlive a run dir (Kafka jars, Maven repository)."""
    default = Path.home() / ".cache" / "portevoix"
    return Path(os.environ.get("PORTEVOIX_CACHE_DIR") or default).expanduser().resolve()


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise LocalStackError(f"{name}={raw!r} is not an integer") from None


def say(message: str) -> None:
    """Progress goes to stderr so that stdout stays machine-readable (the env lines)."""
    print(message, file=sys.stderr, flush=True)


def port_answers(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """True while `pid` runs. Reaps it first if it is our own exited child, so a zombie
    (a broker started by this very process that crashed) does not look alive."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by another user
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def wait_vanished(pid: int, timeout: float) -> bool:
    """Waits until `pid` no longer exists at all, zombies included (an exited process stays a
    zombie until its parent reaps it); returns whether it vanished in time."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def pid_cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def find_pids_with_arg(arg: str) -> list[int]:
    """Processes whose command line holds `arg` exactly (e.g. our own server.properties path):
    a safety net for processes whose pid file was lost, without matching anyone else's."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid() and arg in pid_cmdline(int(entry.name)):
            found.append(int(entry.name))
    return found


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Waits for the processes to exit; returns those still alive after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    alive = [pid for pid in pids if pid_alive(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in alive if pid_alive(pid)]
    return alive


def kill_group(pid: int, sig: signal.Signals) -> None:
    """Signals the process group led by `pid` (our detached processes lead their own group),
    falling back to the single process when it is not a group leader."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (two pytest sessions calling up() at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine to completion from synchronous code, even when the caller already runs
    an event loop in this thread (e.g. an async pytest fixture calling stack.up())."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name="portevoix-async")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
