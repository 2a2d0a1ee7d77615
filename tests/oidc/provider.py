"""A real OpenID Connect provider for the tests: navikt's mock-oauth2-server (discovery, JWKS,
authorization code with PKCE, refresh, RP-initiated logout, an interactive login form taking a
user name and the claims to put in the tokens). Its jars come from Maven Central once, resolved
like Kafka's (``deploy/local/kafka.py``) into the cache folder; the provider runs as a small JVM
(-Xmx256m) on a free loopback port for one test session."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from deploy.local.common import LocalStackError, cache_dir, file_lock
from deploy.local.kafka import check_java, check_maven, java_executable

VERSION = "6.0.2"
MAIN_CLASS = "no.nav.security.mock.oauth2.StandaloneMockOAuth2ServerKt"
POM = Path(__file__).parent / "mock-oauth2-pom.xml"
ISSUER_ID = "portevoix"
TOKEN_SECONDS = 120
READY_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Provider:
    base_url: str

    def issuer(self, issuer_id: str = ISSUER_ID) -> str:
        return f"{self.base_url}/{issuer_id}"


def resolve_libs() -> Path:
    """The provider and its runtime dependencies as a folder of jars, fetched by Maven on first use."""
    home = cache_dir() / f"mock-oauth2-server-{VERSION}"
    libs, marker = home / "libs", home / "libs" / ".complete"
    if marker.exists():
        return libs
    with file_lock(cache_dir() / f"mock-oauth2-server-{VERSION}.lock"):
        if marker.exists():
            return libs
        mvn = check_maven()
        home.mkdir(parents=True, exist_ok=True)
        pom, staging = home / "pom.xml", home / "libs.partial"
        shutil.copyfile(POM, pom)
        shutil.rmtree(staging, ignore_errors=True)
        command = [mvn, "-q", "-B", "-f", str(pom), f"-Dmaven.repo.local={cache_dir() / 'm2'}",
                   f"-Dmock.oauth2.version={VERSION}", "dependency:copy-dependencies", "-DincludeScope=runtime",
                   f"-DoutputDirectory={staging}"]
        result = subprocess.run(command, cwd=home, capture_output=True, text=True, timeout=1200, check=False)
        if result.returncode != 0 or not (staging / f"mock-oauth2-server-{VERSION}.jar").exists():
            output = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
            raise LocalStackError(f"Maven could not resolve mock-oauth2-server {VERSION}:\n{output}")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        marker.write_text(f"mock-oauth2-server {VERSION}\n")
    return libs


def config() -> dict:
    """Interactive login (the test posts a user name and the claims of its choice) and tokens that
    live TOKEN_SECONDS, as an IdP's short-lived access tokens do."""
    return {"interactiveLogin": True, "httpServer": "NettyWrapper",
            "tokenCallbacks": [{"issuerId": ISSUER_ID, "tokenExpiry": TOKEN_SECONDS, "requestMappings": []}]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running(run_dir: Path) -> Iterator[Provider]:
    check_java()
    libs = resolve_libs()
    run_dir.mkdir(parents=True, exist_ok=True)
    config_file = run_dir / "mock-oauth2-config.json"
    config_file.write_text(json.dumps(config()))
    port = _free_port()
    env = {**os.environ, "SERVER_HOSTNAME": "127.0.0.1", "SERVER_PORT": str(port),
           "JSON_CONFIG_PATH": str(config_file)}
    log = run_dir / "mock-oauth2-server.log"
    with log.open("ab") as out:
        process = subprocess.Popen([java_executable(), "-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp", f"{libs}/*",
                                    MAIN_CLASS], env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)  # in the test run's process group: Ctrl-C stops it too
    provider = Provider(f"http://127.0.0.1:{port}")
    try:
        _wait_ready(provider, process, log)
        yield provider
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_ready(provider: Provider, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    url = f"{provider.issuer()}/.well-known/openid-configuration"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalStackError(f"mock-oauth2-server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise LocalStackError(f"mock-oauth2-server not ready after {READY_TIMEOUT_S:.0f}s:\n{log.read_text()[-3000:]}")
