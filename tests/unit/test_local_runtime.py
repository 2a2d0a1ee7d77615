"""deploy.local: the pure parts without servers, and one real start/stop cycle (integration)."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.local import common, kafka, postgres, stack
from deploy.local.common import LocalStackError


@dataclass(frozen=True)
class FakeTopic:
    name: str
    partitions: int = 3
    retention_ms: int | None = None
    compacted: bool = False
    extra: tuple[tuple[str, str], ...] = ()

    def config(self) -> dict[str, str]:
        return dict(self.extra)


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PORTEVOIX_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("PORTEVOIX_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "PORTEVOIX_KAFKA_PORT", "PORTEVOIX_PG_PORT",
                 "PORTEVOIX_KAFKA_CONTROLLER_PORT", "PORTEVOIX_KAFKA_HEAP", "PORTEVOIX_POSTGRES"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "run"


def test_kafka_config_follows_the_environment(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTEVOIX_KAFKA_PORT", "29092")
    monkeypatch.setenv("PORTEVOIX_KAFKA_HEAP", "-Xmx1g")
    cfg = kafka.KafkaConfig.from_env()
    assert (cfg.port, cfg.controller_port, cfg.heap) == (29092, 29093, "-Xmx1g")
    assert cfg.bootstrap == "127.0.0.1:29092"
    assert cfg.state_dir == run_dir.resolve() / "kafka"
    assert cfg.libs_dir.parent.name == f"kafka-{kafka.KAFKA_VERSION}"


def test_bad_port_is_refused(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTEVOIX_PG_PORT", "fifteen")
    with pytest.raises(LocalStackError, match="PORTEVOIX_PG_PORT"):
        postgres.PostgresConfig.from_env()


def test_unknown_postgres_flavor_is_refused(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTEVOIX_POSTGRES", "docker")
    with pytest.raises(LocalStackError, match="embedded, os"):
        postgres.PostgresConfig.from_env()


def test_postgres_dsn(run_dir: Path) -> None:
    cfg = postgres.PostgresConfig.from_env()
    assert cfg.dsn == "postgresql://portevoix:portevoix@127.0.0.1:15432/portevoix"
    assert postgres.PostgresConfig.from_env("os").root == run_dir.resolve() / "postgres-os"


def test_server_properties_fit_a_single_node(run_dir: Path) -> None:
    text = kafka.server_properties(kafka.KafkaConfig.from_env())
    props = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                "transaction.state.log.min.isr", "share.coordinator.state.topic.replication.factor"):
        assert props[key] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "false"


def test_cluster_id_is_a_kafka_uuid() -> None:
    for _ in range(200):
        cluster_id = kafka.kafka_cluster_id()
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_topic_configs_merge_registry_fields_and_config() -> None:
    assert kafka._topic_configs(FakeTopic("a", retention_ms=1000)) == {"retention.ms": "1000"}
    compacted = FakeTopic("b", compacted=True, extra=(("retention.ms", "-1"), ("segment.ms", "60000")))
    assert kafka._topic_configs(compacted) == {"cleanup.policy": "compact", "retention.ms": "-1", "segment.ms": "60000"}


class FakeAdmin:
    def __init__(self, errors: list[tuple[str, int, str]]) -> None:
        self.errors = errors

    async def create_topics(self, new_topics: list[object]) -> object:
        return type("Response", (), {"topic_errors": self.errors})()


def test_create_topics_tolerates_already_exists_only() -> None:
    asyncio.run(kafka._create_topics(FakeAdmin([("a", 0, ""), ("b", 36, "exists")]), []))
    with pytest.raises(Exception, match="cannot create topic c"):
        asyncio.run(kafka._create_topics(FakeAdmin([("c", 37, "bad partitions")]), []))


def test_pid_alive_sees_through_zombies() -> None:
    assert common.pid_alive(os.getpid())
    # `true` exits and stays a zombie: its parent holds it and never waits for it.
    script = "import subprocess, time; child = subprocess.Popen(['true']); print(child.pid, flush=True); time.sleep(9)"
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        zombie = int(parent.stdout.readline())
        assert common.wait_gone([zombie], 10) == []  # not alive...
        assert not common.wait_vanished(zombie, 0)  # ...though its pid is still taken
    finally:
        parent.kill()
        parent.wait()
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    assert common.wait_gone([exited.pid], 10) == []  # our own exited child: reaped, not alive


def test_find_pids_with_arg_matches_whole_arguments(tmp_path: Path) -> None:
    marker = str(tmp_path / "unique-marker")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", marker])
    try:
        # Right after a vfork the child's new command line can still be empty: poll briefly.
        deadline = time.monotonic() + 5
        while common.find_pids_with_arg(marker) != [sleeper.pid] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert common.find_pids_with_arg(marker) == [sleeper.pid]
        assert common.find_pids_with_arg(marker[:-1]) == []
    finally:
        sleeper.kill()
        sleeper.wait()


def test_run_async_works_inside_a_running_loop() -> None:
    async def answer() -> int:
        return 42

    async def caller() -> int:
        return common.run_async(answer())

    assert asyncio.run(caller()) == 42


def test_env_lines_are_shell_safe_and_read_back(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = stack.StackEnv("127.0.0.1:19092", "postgresql://u:p@127.0.0.1:1/db?sslmode=disable&x=1")
    assert env.env_lines().splitlines()[0] == "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092"
    assert "'postgresql://" in env.env_lines()
    stack.env_file().parent.mkdir(parents=True)
    stack.env_file().write_text(env.env_lines())
    monkeypatch.setattr(stack, "status", lambda: {"kafka": "running: x", "postgres": "running: y"})
    assert stack.running_env() == env
    monkeypatch.setattr(stack, "status", lambda: {"kafka": "stopped", "postgres": "running: y"})
    assert stack.running_env() is None


def test_up_with_external_servers_starts_nothing(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:9092")
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/x")
    monkeypatch.setattr(kafka, "up", lambda: pytest.fail("kafka started"))
    monkeypatch.setattr(postgres, "up", lambda: pytest.fail("postgres started"))
    asked: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(kafka, "ensure_topics", lambda bootstrap, topics: asked.append(
        (bootstrap, [t.name for t in topics])) or [])
    env = stack.up(topics=[FakeTopic("t.v1")])
    assert env == stack.StackEnv("broker:9092", "postgresql://db/x")
    assert asked == [("broker:9092", ["t.v1"])]
    assert (run_dir / "env").read_text() == env.env_lines()
    assert stack.status() == {"kafka": "external: broker:9092", "postgres": "external: DATABASE_URL"}


def test_down_with_nothing_running_is_harmless(run_dir: Path) -> None:
    assert stack.down() is False
    assert stack.down() is False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _consecutive_free_ports() -> int:
    for _ in range(50):
        port = _free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports")


@pytest.mark.integration
@pytest.mark.skipif(not shutil.which("java"), reason="needs java 17+")
def test_real_stack_lifecycle(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second stack beside the session's one: own run dir and ports, shared jar cache."""
    # Not under pytest's tmp_path: that is private (0700) and, as root, PostgreSQL runs as
    # another user who must be able to reach its folder.
    own_run_dir = Path(tempfile.mkdtemp(prefix="portevoix-lifecycle-"))
    own_run_dir.chmod(0o755)
    monkeypatch.setenv("PORTEVOIX_RUN_DIR", str(own_run_dir))
    monkeypatch.setenv("PORTEVOIX_CACHE_DIR", str(Path.home() / ".cache" / "portevoix"))
    monkeypatch.setenv("PORTEVOIX_KAFKA_PORT", str(_consecutive_free_ports()))
    monkeypatch.setenv("PORTEVOIX_PG_PORT", str(_free_port()))
    try:
        env = stack.up(topics=[FakeTopic("lifecycle.v1", partitions=2, retention_ms=60000)])
        kafka_pid = kafka.running_pid()
        assert kafka_pid is not None and stack.is_running()
        assert stack.up() == env and kafka.running_pid() == kafka_pid  # detected, not doubled

        async def check() -> None:
            import asyncpg
            from aiokafka.admin import AIOKafkaAdminClient

            admin = AIOKafkaAdminClient(bootstrap_servers=env.kafka_bootstrap)
            await admin.start()
            try:
                assert "lifecycle.v1" in await admin.list_topics()
            finally:
                await admin.close()
            connection = await asyncpg.connect(env.database_url)
            assert await connection.fetchval("SELECT 1") == 1
            await connection.close()

        asyncio.run(check())
    finally:
        stack.down()
    assert not stack.is_running()
    assert common.find_pids_with_arg(str(kafka.KafkaConfig.from_env().properties_file)) == []
    assert common.find_pids_with_arg(str(postgres.PostgresConfig.from_env().data_dir)) == []
    shutil.rmtree(own_run_dir)
