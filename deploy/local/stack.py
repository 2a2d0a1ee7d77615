"""The whole local stack: Kafka and PostgreSQL started side by side, then the project's topics.

KAFKA_BOOTSTRAP_SERVERS or DATABASE_URL, when set, name servers that already run: that part is
neither started nor stopped here.
"""

from __future__ import annotations

import os
import shlex
import shutil
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

from . import kafka, postgres
from .common import LocalStackError, file_lock, run_dir, say
from .kafka import TopicSpec

T = TypeVar("T")


@dataclass(frozen=True)
class StackEnv:
    kafka_bootstrap: str
    database_url: str

    def as_env(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap, "DATABASE_URL": self.database_url}

    def env_lines(self) -> str:
        """Lines a shell can source (`set -a; . .portevoix/env`)."""
        return "".join(f"{key}={shlex.quote(value)}\n" for key, value in self.as_env().items())


def env_file() -> Path:
    return run_dir() / "env"


def _lock() -> Path:
    return run_dir() / ".lock"


def _external(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


def _registry_topics() -> list[TopicSpec] | None:
    # Imported lazily: deploy.local must work before (and without) shared/.
    try:
        from shared.topics import all_topics
    except ImportError as exc:
        say(f"topics: shared.topics is not importable ({exc}); no topics created")
        return None
    return list(all_topics())


def _wait_all(futures: dict[str, Future[T]]) -> dict[str, T]:
    """Results of every future; if some failed, one error that names them all (the others
    keep running: down() stops them)."""
    results: dict[str, T] = {}
    errors: list[str] = []
    first_error: Exception | None = None
    for name, future in futures.items():
        try:
            results[name] = future.result()
        except Exception as exc:
            first_error = first_error or exc
            message = str(exc) if isinstance(exc, LocalStackError) else repr(exc)
            errors.append(message if message.startswith(name) else f"{name}: {message}")
    if errors:
        raise LocalStackError("\n".join(errors)) from first_error
    return results


def up(topics: Iterable[TopicSpec] | None = None) -> StackEnv:
    """Starts what is not running yet, creates the missing topics (`topics`, by default the
    registry's shared.topics.all_topics()), writes <run dir>/env and returns the addresses."""
    started = time.monotonic()
    with file_lock(_lock()):
        kafka_bootstrap = _external("KAFKA_BOOTSTRAP_SERVERS")
        database_url = _external("DATABASE_URL")
        starters: dict[str, Callable[[], str]] = {}
        if kafka_bootstrap is None:
            starters["kafka"] = kafka.up
        else:
            say(f"kafka: using KAFKA_BOOTSTRAP_SERVERS={kafka_bootstrap}")
        if database_url is None:
            starters["postgres"] = postgres.up
        else:
            say("postgres: using DATABASE_URL")
        # Maven, the JVM and initdb mostly wait on I/O and each other: run them side by side.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="portevoix-up") as pool:
            results = _wait_all({name: pool.submit(start) for name, start in starters.items()})
        env = StackEnv(
            kafka_bootstrap=kafka_bootstrap or results["kafka"],
            database_url=database_url or results["postgres"],
        )
        wanted = list(topics) if topics is not None else _registry_topics()
        if wanted is not None:
            try:
                created = kafka.ensure_topics(env.kafka_bootstrap, wanted)
            except Exception as exc:  # client errors carry no hint of where or what
                raise LocalStackError(f"topics: cannot create them on {env.kafka_bootstrap}: {exc!r}") from exc
            names = f": {', '.join(created)}" if 0 < len(created) <= 5 else ""
            say(f"topics: {len(wanted)} wanted, {len(created)} created{names}")
        env_file().parent.mkdir(parents=True, exist_ok=True)
        env_file().write_text(env.env_lines())
    say(f"stack: up in {time.monotonic() - started:.1f}s")
    return env


def down() -> bool:
    """Stops our Kafka and PostgreSQL (of either flavour); returns whether any ran."""
    with file_lock(_lock()):
        stoppers: dict[str, Callable[[], bool]] = {"kafka": kafka.down}
        for flavor in postgres.FLAVORS:
            stoppers[f"postgres-{flavor}"] = partial(postgres.down, postgres.PostgresConfig.from_env(flavor))
        with ThreadPoolExecutor(max_workers=len(stoppers), thread_name_prefix="portevoix-down") as pool:
            stopped = _wait_all({name: pool.submit(stop) for name, stop in stoppers.items()})
        env_file().unlink(missing_ok=True)
    if not any(stopped.values()):
        say("stack: nothing was running")
    return any(stopped.values())


def wipe() -> None:
    """Forget every topic, offset and row: removes the stopped stack's Kafka and PostgreSQL data
    (the next `up` formats and initialises them again). Refused while anything runs."""
    with file_lock(_lock()):
        if kafka.status() or any(postgres.status(postgres.PostgresConfig.from_env(f)) for f in postgres.FLAVORS):
            raise LocalStackError("stack: stop it before wiping its data")
        folders = [kafka.KafkaConfig.from_env().data_dir]
        folders += [postgres.PostgresConfig.from_env(f).data_dir for f in postgres.FLAVORS]
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
    say("stack: data wiped")


def status() -> dict[str, str]:
    """What runs, one line per component: 'running: …', 'external: …' or 'stopped'."""
    result: dict[str, str] = {}
    external_kafka = _external("KAFKA_BOOTSTRAP_SERVERS")
    kafka_state = kafka.status()
    if external_kafka:
        result["kafka"] = f"external: {external_kafka}"
    else:
        result["kafka"] = f"running: {kafka_state}" if kafka_state else "stopped"
    if _external("DATABASE_URL"):
        result["postgres"] = "external: DATABASE_URL"
    else:
        states = [postgres.status(postgres.PostgresConfig.from_env(flavor)) for flavor in postgres.FLAVORS]
        running = [state for state in states if state]
        result["postgres"] = f"running: {'; '.join(running)}" if running else "stopped"
    return result


def is_running() -> bool:
    """True when every part that is ours to run (not given by env) runs."""
    return "stopped" not in status().values()


def running_env() -> StackEnv | None:
    """The addresses of the running stack, or None when some part of it does not run."""
    if not is_running() or not env_file().exists():
        return None
    values = dict(line.split("=", 1) for line in env_file().read_text().splitlines() if "=" in line)
    unquoted = {key: shlex.split(value)[0] if value else "" for key, value in values.items()}
    return StackEnv(
        kafka_bootstrap=_external("KAFKA_BOOTSTRAP_SERVERS") or unquoted.get("KAFKA_BOOTSTRAP_SERVERS", ""),
        database_url=_external("DATABASE_URL") or unquoted.get("DATABASE_URL", ""),
    )
