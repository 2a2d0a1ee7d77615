"""Session fixtures: one real Kafka broker and one real PostgreSQL for the whole test run.

Where they come from, in order: ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` when set; else
testcontainers when a Docker engine answers; else the project's local runtime
(``deploy.local``: Kafka from Maven Central, embedded PostgreSQL), started once here and
stopped at the end if this run started it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest


def _docker_answers() -> bool:
    with contextlib.suppress(Exception):
        import docker

        docker.from_env(timeout=3).ping()
        return True
    return False


@contextlib.contextmanager
def _testcontainers() -> Iterator[tuple[str, str]]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with KafkaContainer("apache/kafka:4.1.0").with_kraft() as kafka, \
            PostgresContainer("postgres:17", driver=None) as postgres:
        yield kafka.get_bootstrap_server(), postgres.get_connection_url()


TEST_STACK = {  # beside the demo's stack (.portevoix, 19092/15432), so both can run at once
    "PORTEVOIX_RUN_DIR": str(Path(__file__).parents[1] / ".portevoix" / "test"),
    "PORTEVOIX_KAFKA_PORT": "19192",
    "PORTEVOIX_PG_PORT": "15532",
}


@contextlib.contextmanager
def _local_runtime() -> Iterator[tuple[str, str]]:
    from deploy.local import stack

    ours = "PORTEVOIX_RUN_DIR" not in os.environ
    if ours:
        os.environ.update(TEST_STACK)
    already_running = stack.is_running()
    if ours and not already_running:
        # Fresh data each run: what a demo or an earlier run left in Kafka (e.g. thousands of
        # events that a test's new consumer group would read first) cannot change a result.
        stack.wipe()
    endpoints = stack.up()
    try:
        yield endpoints.kafka_bootstrap, endpoints.database_url
    finally:
        if not already_running and not os.environ.get("PORTEVOIX_KEEP_STACK"):
            stack.down()


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[tuple[str, str]]:
    kafka, database = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("DATABASE_URL")
    if kafka and database:
        from deploy.local.kafka import ensure_topics
        from shared.topics import all_topics

        ensure_topics(kafka, all_topics())
        yield kafka, database
    elif _docker_answers():
        with _testcontainers() as (kafka, database):
            from deploy.local.kafka import ensure_topics
            from shared.topics import all_topics

            ensure_topics(kafka, all_topics())
            yield kafka, database
    else:
        with _local_runtime() as endpoints:
            yield endpoints


@pytest.fixture(scope="session")
def kafka_bootstrap(infrastructure: tuple[str, str]) -> str:
    return infrastructure[0]


@pytest.fixture(scope="session")
def database_url(infrastructure: tuple[str, str]) -> str:
    return infrastructure[1]


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real OpenID Connect provider (mock-oauth2-server, a JVM), started once per session."""
    import shutil

    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Java 17+ is missing: apt-get install -y openjdk-17-jre-headless maven (.ci/run installs it)")
    from tests.oidc import provider

    with provider.running(tmp_path_factory.mktemp("oidc")) as running:
        yield running


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """A skipped test is a promise not checked here (no promtool, no Chromium, …): say which, loudly."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if isinstance(r, pytest.TestReport)]
    if skipped:
        terminalreporter.section(f"NOT CHECKED on this machine: {len(skipped)} skipped", yellow=True, bold=True)
        for report in skipped:
            terminalreporter.line(f"{report.nodeid}: {_skip_reason(report)}")
        if os.environ.get("CI"):
            terminalreporter.line("CI installs every tool the suite needs: a skip there is a failure.", red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if os.environ.get("CI") and reporter is not None and reporter.stats.get("skipped") and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
