"""A real Apache Kafka broker (KRaft, one combined broker+controller) on 127.0.0.1, without Docker.

The broker's jars come from Maven Central (kafka_2.13 and its runtime dependencies), resolved once
into a cache folder; the broker then runs as a detached JVM that outlives the Python process that
started it, until `down()`.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import kafka_security
from .common import (
    HOST,
    LocalStackError,
    cache_dir,
    env_int,
    file_lock,
    find_pids_with_arg,
    kill_group,
    pid_alive,
    pid_cmdline,
    port_answers,
    read_pid,
    run_async,
    run_dir,
    say,
    tail,
    wait_gone,
)

KAFKA_VERSION = "4.4.0"
# The log4j2 version kafka-server 4.4.0 depends on (see `mvn dependency:tree`); Kafka logs through
# slf4j-api 1.7.36, so the binding is log4j-slf4j-impl at this version.
LOG4J_VERSION = "2.25.5"
MIN_JAVA = 17
DEFAULT_PORT = 19092
DEFAULT_HEAP = "-Xms256m -Xmx512m"
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
PROBE_TOPIC = "portevoix-readiness-probe"

_RESOURCES = Path(__file__).resolve().parent
POM_TEMPLATE = _RESOURCES / "kafka-pom.xml"
LOG4J_CONFIG = _RESOURCES / "log4j2.xml"
INSTALL_HINT = "install them with: apt-get install -y openjdk-17-jre-headless maven"

# Popen handles of brokers started by this process, kept so they are not garbage-collected
# (with a "still running" ResourceWarning) while the broker deliberately outlives them.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class TopicSpec(Protocol):
    """What ensure_topics needs from a topic (shared.topics' registry entries fit)."""

    @property
    def name(self) -> str: ...
    @property
    def partitions(self) -> int: ...
    @property
    def retention_ms(self) -> int | None: ...
    @property
    def compacted(self) -> bool: ...
    def config(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class KafkaConfig:
    port: int
    controller_port: int
    heap: str
    state_dir: Path  # <run dir>/kafka: data, properties, logs, pid
    cache_root: Path  # <cache>: kafka-<version>/libs and the Maven repository m2/

    @classmethod
    def from_env(cls) -> KafkaConfig:
        port = env_int("PORTEVOIX_KAFKA_PORT", DEFAULT_PORT)
        return cls(
            port=port,
            controller_port=env_int("PORTEVOIX_KAFKA_CONTROLLER_PORT", port + 1),
            heap=os.environ.get("PORTEVOIX_KAFKA_HEAP", "").strip() or DEFAULT_HEAP,
            state_dir=run_dir() / "kafka",
            cache_root=cache_dir(),
        )

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def version_dir(self) -> Path:
        return self.cache_root / f"kafka-{KAFKA_VERSION}"

    @property
    def libs_dir(self) -> Path:
        return self.version_dir / "libs"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def properties_file(self) -> Path:
        return self.state_dir / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "server.log"

    @property
    def stdout_file(self) -> Path:
        return self.state_dir / "stdout.log"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "kafka.pid"


# --- prerequisites -------------------------------------------------------------------------


def java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise LocalStackError(f"java {MIN_JAVA}+ is needed to run Kafka and is not on PATH; {INSTALL_HINT}")
    return found


def check_java() -> None:
    java = java_executable()
    result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        raise LocalStackError(f"cannot tell the version of {java}: {result.stderr.strip()}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise LocalStackError(f"Kafka {KAFKA_VERSION} needs java {MIN_JAVA}+, {java} is {major}; {INSTALL_HINT}")


def check_maven() -> str:
    mvn = shutil.which("mvn")
    if not mvn:
        raise LocalStackError(f"mvn is needed once to fetch the Kafka jars and is not on PATH; {INSTALL_HINT}")
    return mvn


# --- artifacts -----------------------------------------------------------------------------


def resolve_libs(cfg: KafkaConfig) -> Path:
    """Kafka and its runtime dependencies as a folder of jars, fetched by Maven on first use."""
    marker = cfg.libs_dir / ".complete"
    if marker.exists():
        return cfg.libs_dir
    # Several repos (or test sessions) may share the cache: one resolves, the others wait.
    with file_lock(cfg.cache_root / f"kafka-{KAFKA_VERSION}.lock"):
        if marker.exists():
            return cfg.libs_dir
        mvn = check_maven()
        say(f"kafka: resolving Kafka {KAFKA_VERSION} artifacts with Maven…")
        started = time.monotonic()
        cfg.version_dir.mkdir(parents=True, exist_ok=True)
        pom = cfg.version_dir / "pom.xml"
        shutil.copyfile(POM_TEMPLATE, pom)
        staging = cfg.version_dir / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        command = [
            mvn, "-q", "-B", "-f", str(pom),
            f"-Dmaven.repo.local={cfg.cache_root / 'm2'}",
            f"-Dkafka.version={KAFKA_VERSION}",
            f"-Dlog4j.version={LOG4J_VERSION}",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]  # fmt: skip
        result = subprocess.run(command, cwd=cfg.version_dir, capture_output=True, text=True, timeout=1200)
        if result.returncode != 0:
            output = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
            raise LocalStackError(f"Maven could not resolve Kafka {KAFKA_VERSION}:\n{output}")
        for jar in (f"kafka_2.13-{KAFKA_VERSION}.jar", f"log4j-slf4j-impl-{LOG4J_VERSION}.jar"):
            if not (staging / jar).exists():
                raise LocalStackError(f"Maven finished but {jar} is missing from {staging}")
        shutil.rmtree(cfg.libs_dir, ignore_errors=True)
        staging.rename(cfg.libs_dir)
        # Written last: an interrupted resolution has no marker and is redone next time.
        marker.write_text(f"kafka {KAFKA_VERSION} log4j {LOG4J_VERSION}\n")
        jars = len(list(cfg.libs_dir.glob("*.jar")))
        say(f"kafka: {jars} jars resolved in {time.monotonic() - started:.1f}s")
    return cfg.libs_dir


# --- configuration and storage -------------------------------------------------------------


def server_properties(cfg: KafkaConfig) -> str:
    controller = f"{HOST}:{cfg.controller_port}"
    lines = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": controller,
        "listeners": f"PLAINTEXT://{cfg.bootstrap},CONTROLLER://{controller}",
        "advertised.listeners": f"PLAINTEXT://{cfg.bootstrap},CONTROLLER://{controller}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(cfg.data_dir),
        # One node: every internal topic can only have one replica.
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # The 50-partition defaults make the first consumer group or transaction slow to start
        # on a 2-core machine; 5 is plenty for one node.
        "offsets.topic.num.partitions": "5",
        "transaction.state.log.num.partitions": "5",
        "share.coordinator.state.topic.num.partitions": "5",
        # Tests join groups constantly: no 3 s wait for more members that never come.
        "group.initial.rebalance.delay.ms": "0",
        "group.streams.initial.rebalance.delay.ms": "0",
        # The 128 MiB default would take a quarter of the small heap.
        "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
        # After a crash, the restarted broker cannot register until its previous incarnation's
        # session expires: 4 s instead of 9 s (still 4 missed heartbeats before a fencing).
        "broker.heartbeat.interval.ms": "1000",
        "broker.session.timeout.ms": "4000",
        "num.partitions": "3",
        # Topics come from the registry (ensure_topics); a typo must fail, not create a topic.
        "auto.create.topics.enable": "false",
    }
    if kafka_security.enabled():  # least privilege (deploy/local/kafka_security.py), off by default
        lines.update(kafka_security.broker_properties(cfg.bootstrap, controller))
    header = "# Written by deploy/local/kafka.py on every start; edits are lost.\n"
    return header + "".join(f"{key}={value}\n" for key, value in lines.items())


def kafka_cluster_id() -> str:
    """A Kafka Uuid in its base64 form; Kafka never issues ids starting with '-' (they read as
    command-line options), so neither do we."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def java_command(cfg: KafkaConfig, main_class: str, *args: str) -> list[str]:
    return [
        java_executable(),
        *cfg.heap.split(),
        # Kafka's own defaults from kafka-run-class.sh.
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-XX:+ExplicitGCInvokesConcurrent",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        f"-Dportevoix.kafka.log={cfg.log_file}",
        "-cp",
        f"{cfg.libs_dir}/*",
        main_class,
        *args,
    ]


def ensure_formatted(cfg: KafkaConfig) -> None:
    """Formats the KRaft storage once. The controller's address is written into the metadata
    log at format time, so changing the ports means starting from empty storage."""
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    cfg.properties_file.write_text(server_properties(cfg))
    ports_marker = cfg.state_dir / "formatted-for-ports"
    wanted = f"{cfg.port} {cfg.controller_port}{' sasl' if kafka_security.enabled() else ''}\n"
    if (cfg.data_dir / "meta.properties").exists():
        if ports_marker.exists() and ports_marker.read_text() == wanted:
            return
        say("kafka: ports changed since the storage was formatted; starting from empty storage")
    shutil.rmtree(cfg.data_dir, ignore_errors=True)
    ports_marker.unlink(missing_ok=True)
    command = java_command(
        cfg,
        "kafka.tools.StorageTool",
        "format",
        "--config", str(cfg.properties_file),
        "--cluster-id", kafka_cluster_id(),
        "--standalone",
        *(kafka_security.format_arguments() if kafka_security.enabled() else []),
    )  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        raise LocalStackError(f"kafka storage format failed:\n{result.stdout}{result.stderr}\n{tail(cfg.log_file)}")
    ports_marker.write_text(wanted)


# --- process -------------------------------------------------------------------------------


def _is_our_broker(pid: int, cfg: KafkaConfig) -> bool:
    cmdline = pid_cmdline(pid)
    return "kafka.Kafka" in cmdline and str(cfg.properties_file) in cmdline


def running_pid(cfg: KafkaConfig | None = None) -> int | None:
    """The pid of our broker if it runs; a stale pid file is removed."""
    cfg = cfg or KafkaConfig.from_env()
    pid = read_pid(cfg.pid_file)
    if pid is None:
        return None
    if pid_alive(pid) and _is_our_broker(pid, cfg):
        return pid
    say(f"kafka: removing stale pid file (pid {pid} is gone)")
    cfg.pid_file.unlink(missing_ok=True)
    return None


def _spawn(cfg: KafkaConfig) -> int:
    for port in (cfg.port, cfg.controller_port):
        if port_answers(port):
            raise LocalStackError(
                f"kafka: port {HOST}:{port} is in use by a process that is not the broker of "
                f"{cfg.state_dir}; stop it or choose other ports with PORTEVOIX_KAFKA_PORT / "
                "PORTEVOIX_KAFKA_CONTROLLER_PORT"
            )
    command = java_command(cfg, "kafka.Kafka", str(cfg.properties_file))
    with cfg.stdout_file.open("ab") as out:
        # Own session: Ctrl-C in the terminal or the end of a test run does not reach it, and
        # down() can signal the whole process group.
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cfg.state_dir,
            start_new_session=True,
        )
    _CHILDREN[process.pid] = process
    cfg.pid_file.write_text(f"{process.pid}\n")
    return process.pid


async def _probe_metadata(bootstrap: str) -> None:
    """Creates the probe topic and sees it listed (the controller and the broker both answer),
    then finds a group coordinator: the first ask creates __consumer_offsets, which would
    otherwise stall the first consumer of a test run."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000,
                                **kafka_security.client_settings())
    try:
        await admin.start()
        await _create_topics(admin, [NewTopic(PROBE_TOPIC, 1, 1)])
        if PROBE_TOPIC not in await admin.list_topics():
            raise LocalStackError("probe topic not listed yet")
        await admin.find_coordinator(PROBE_TOPIC)
    finally:
        await admin.close()


def wait_ready(cfg: KafkaConfig, pid: int, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            raise LocalStackError(f"kafka exited during start-up; last log lines:\n{_log_tails(cfg)}")
        if port_answers(cfg.port):
            try:
                run_async(_probe_metadata(cfg.bootstrap))
                return
            except Exception as exc:  # not ready yet: any client error means "try again"
                last_error = exc
        time.sleep(0.25)
    raise LocalStackError(
        f"kafka not ready after {timeout:.0f}s (last error: {last_error!r}); last log lines:\n{_log_tails(cfg)}"
    )


def _log_tails(cfg: KafkaConfig) -> str:
    return f"--- {cfg.log_file}\n{tail(cfg.log_file)}\n--- {cfg.stdout_file}\n{tail(cfg.stdout_file, 15)}"


def up(cfg: KafkaConfig | None = None, timeout: float = READY_TIMEOUT_S) -> str:
    """Starts the broker unless ours already runs; returns the bootstrap address once ready."""
    cfg = cfg or KafkaConfig.from_env()
    started = time.monotonic()
    pid = running_pid(cfg)
    if pid is not None:
        # The properties file is written just before each start, so it is the running config.
        if cfg.properties_file.read_text() != server_properties(cfg):
            raise LocalStackError(
                f"kafka already runs (pid {pid}) with other settings than asked ({cfg.properties_file}); "
                "run `python -m deploy.local down` first"
            )
        wait_ready(cfg, pid, timeout)
        say(f"kafka: already running (pid {pid}) on {cfg.bootstrap}")
        return cfg.bootstrap
    check_java()
    resolve_libs(cfg)
    ensure_formatted(cfg)
    pid = _spawn(cfg)
    say(f"kafka: starting (pid {pid}), log {cfg.log_file}")
    try:
        wait_ready(cfg, pid, timeout)
    except LocalStackError:
        down(cfg, quiet=True)
        raise
    if kafka_security.enabled():
        say(f"kafka: {run_async(kafka_security.apply_acls(cfg.bootstrap))} ACLs (SASL/SCRAM, StandardAuthorizer)")
    say(f"kafka: ready on {cfg.bootstrap} in {time.monotonic() - started:.1f}s")
    return cfg.bootstrap


def down(cfg: KafkaConfig | None = None, quiet: bool = False) -> bool:
    """Stops our broker: SIGTERM to its process group (a clean controlled shutdown), SIGKILL
    after STOP_TIMEOUT_S. Returns whether something was running."""
    cfg = cfg or KafkaConfig.from_env()
    pids = set(find_pids_with_arg(str(cfg.properties_file)))  # also finds one whose pid file was lost
    pid = read_pid(cfg.pid_file)
    if pid is not None and pid_alive(pid) and _is_our_broker(pid, cfg):
        pids.add(pid)
    if not pids:
        cfg.pid_file.unlink(missing_ok=True)
        return False
    if not quiet:
        say(f"kafka: stopping (pid {', '.join(map(str, sorted(pids)))})")
    for each in pids:
        kill_group(each, signal.SIGTERM)
    left = wait_gone(sorted(pids), STOP_TIMEOUT_S)
    for each in left:
        say(f"kafka: pid {each} ignored SIGTERM for {STOP_TIMEOUT_S:.0f}s, killing it")
        kill_group(each, signal.SIGKILL)
    if wait_gone(left, 10):
        raise LocalStackError(f"kafka: could not stop pids {left}")
    for each in pids:
        _CHILDREN.pop(each, None)
    cfg.pid_file.unlink(missing_ok=True)
    return True


def status(cfg: KafkaConfig | None = None) -> str | None:
    """A one-line description of our running broker, or None when it does not run."""
    cfg = cfg or KafkaConfig.from_env()
    pid = running_pid(cfg)
    if pid is None:
        return None
    state = "ready" if port_answers(cfg.port) else "not answering"
    return f"pid {pid}, {cfg.bootstrap}, {state}"


# --- topics --------------------------------------------------------------------------------


def _topic_configs(topic: TopicSpec) -> dict[str, str]:
    # retention_ms and compacted are applied even if config() leaves them out; config() wins.
    configs: dict[str, str] = {}
    if topic.retention_ms is not None:
        configs["retention.ms"] = str(topic.retention_ms)
    if topic.compacted:
        configs["cleanup.policy"] = "compact"
    configs.update({key: str(value) for key, value in topic.config().items()})
    return configs


async def _create_topics(admin: object, new_topics: list[object]) -> None:
    """create_topics answers per-topic errors instead of raising: raise all but 'already exists'."""
    from aiokafka.errors import TopicAlreadyExistsError, for_code

    response = await admin.create_topics(new_topics)  # type: ignore[attr-defined]
    for topic, code, *rest in response.topic_errors:
        if code not in (0, TopicAlreadyExistsError.errno):
            message = rest[0] if rest else ""
            raise for_code(code)(f"cannot create topic {topic}: {message}")


def ensure_topics(bootstrap: str, topics: Iterable[TopicSpec], replication_factor: int = 1) -> list[str]:
    """Creates the topics that do not exist yet (existing ones are left as they are, even if
    their settings differ); returns the names created. Safe to run concurrently, and to call
    from synchronous code or from inside an event loop (it then blocks on a helper thread)."""
    return run_async(ensure_topics_async(bootstrap, topics, replication_factor))


async def ensure_topics_async(bootstrap: str, topics: Iterable[TopicSpec], replication_factor: int = 1) -> list[str]:
    """ensure_topics for async callers."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    wanted = list(topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000,
                                **kafka_security.client_settings())
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [topic for topic in wanted if topic.name not in existing]
        if missing:
            new = [NewTopic(t.name, t.partitions, replication_factor, topic_configs=_topic_configs(t)) for t in missing]
            await _create_topics(admin, new)
    finally:
        await admin.close()
    return [topic.name for topic in missing]
