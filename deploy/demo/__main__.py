"""``python -m deploy.demo [--employees N] [--port-base P] [--keep-running]``: see the package docstring."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from types import FrameType

import httpx

from deploy.demo import flow, report, services
from deploy.demo.api import Api, DemoError
from deploy.demo.console import Console
from deploy.local import stack
from deploy.local.common import LocalStackError, run_dir
from shared.auth import issue_token

JWT_SECRET = "demo-secret-local-only-0123456789abcdef"  # the services run with it; never use it elsewhere


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m deploy.demo", description=__doc__)
    parser.add_argument("--employees", type=int, default=3000, help="size of the group (default 3000)")
    parser.add_argument("--port-base", type=int, default=8001,
                        help="content listens here, distribution +1, tracking +2, reporting +3 (default 8001)")
    parser.add_argument("--timeout", type=float, default=120, help="longest wait for anything to arrive (s)")
    parser.add_argument("--keep-running", action="store_true", help="leave everything up after the report "
                                                                     "(Ctrl-C stops it all)")
    args = parser.parse_args(argv)
    if args.employees < 50:
        parser.error("--employees must be at least 50 (five subsidiaries, a third of them enrolled)")
    return args


@contextlib.asynccontextmanager
async def api_for(procs: services.Services, kafka_bootstrap: str, tenant: str) -> AsyncIterator[Api]:
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with contextlib.AsyncExitStack() as stack_:
        clients = [await stack_.enter_async_context(httpx.AsyncClient(base_url=procs.url(name), timeout=30,
                                                                      limits=limits))
                   for name in services.NAMES]
        yield Api(*clients, kafka_bootstrap=kafka_bootstrap, jwt_secret=JWT_SECRET, tenant=tenant)


async def demo(procs: services.Services, env: stack.StackEnv, console: Console,
               args: argparse.Namespace) -> flow.Outcome:
    async with api_for(procs, env.kafka_bootstrap, flow.new_tenant()) as api:
        outcome = await flow.run(api, console, args.employees, timeout=args.timeout)
    console.say("\n" + report.render(outcome, {n: procs.url(n) for n in services.PROCESSES}, env.kafka_bootstrap,
                                     env.database_url, str(procs.logs)))
    return outcome


def explore(console: Console, tenant: str, procs: services.Services) -> None:
    """Tokens to try the APIs with (the /docs pages have an Authorize button)."""
    for roles in (["analyst"], ["admin"], ["editor"]):
        token = issue_token(JWT_SECRET, subject=f"demo-{roles[0]}", tenant=tenant, roles=roles, ttl_seconds=8 * 3600)
        console.say(f"   {roles[0]:<8} token: {token}")
    console.say(f"   e.g. curl -H 'Authorization: Bearer <analyst token>' "
                f"'{procs.url('reporting')}/v1/kpis/digest?month=…&format=html'")


def wait_for_ctrl_c() -> None:
    stop = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    signal.sigwait(stop)


def stop_like_ctrl_c(signum: int, frame: FrameType | None) -> None:
    """SIGTERM does what Ctrl-C does (asyncio.run turns a SIGINT into a clean cancellation)."""
    os.kill(os.getpid(), signal.SIGINT)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    console = Console()
    # Ctrl-C must work even when started from a shell that ignores SIGINT (background jobs).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, stop_like_ctrl_c)
    wanted = services.ports(args.port_base)
    if busy := services.busy_ports(wanted):
        console.say(f"Ports {', '.join(map(str, busy))} are in use: pick others with --port-base (now "
                    f"{args.port_base}; the services take four ports from there).")
        return 2
    already_running = stack.is_running()
    started_at = time.time()
    procs: services.Services | None = None
    exact = False
    try:
        with console.step("Kafka and PostgreSQL" + (" (already running: kept)" if already_running else "")):
            env = stack.up()
        with console.step("The four services, each a process of its own"):
            procs = services.start(args.port_base, env.kafka_bootstrap, env.database_url, JWT_SECRET,
                                   run_dir() / "logs")
            asyncio.run(services.wait_ready(procs, console, args.timeout))
        outcome = asyncio.run(demo(procs, env, console, args))
        exact = outcome.results.exact
        console.say("\n Timings: " + " · ".join(f"{n + 1}. {s:.0f}s" for n, (_, s) in enumerate(console.timings)) +
                    f"  — total {console.elapsed():.0f}s")
        if args.keep_running:
            console.say("\n Everything keeps running. Ctrl-C stops it all.")
            explore(console, outcome.tenant, procs)
            wait_for_ctrl_c()
    except KeyboardInterrupt:
        console.say("\n Interrupted.")
    except (DemoError, LocalStackError) as error:
        console.say(f"\n ✘ {error}")
        if procs:
            for problem in services.recent_problems(procs.logs, started_at):
                console.say(f"   last logged: {problem}")
            console.say(f"   Logs: {procs.logs}")
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # a second Ctrl-C: still clean
        console.say("\n Stopping" + (" the services (Kafka and PostgreSQL were already running: left up)"
                                     if already_running else " everything"))
        if procs:
            procs.stop(console)
        if not already_running:
            stack.down()
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
