"""``python -m deploy.reliability [--faults a,b] [--run-dir DIR] [--keep-stack]``: see the package docstring."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from deploy.local import stack
from deploy.reliability.harness import ROOT, Services, isolate_stack
from deploy.reliability.load import Ledger, Load, Rates, Tenant
from deploy.reliability.receivers import SmtpReceiver, WebhookReceiver
from deploy.reliability.suite import FAULTS, Row, World, run_fault, table, write_results


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m deploy.reliability", description=__doc__)
    parser.add_argument("--faults", default=",".join(f.name for f in FAULTS),
                        help=f"comma-separated, in order (default: all: {', '.join(f.name for f in FAULTS)})")
    parser.add_argument("--run-dir", type=Path, help="the suite's own stack folder (default: a new temporary one, "
                                                      "removed at the end)")
    parser.add_argument("--keep-stack", action="store_true", help="leave Kafka and PostgreSQL running at the end")
    parser.add_argument("--outage", type=float, default=8.0, help="seconds a broker, database or receiver stays down")
    parser.add_argument("--reconcile-timeout", type=float, default=90.0, help="longest wait for a reconciliation")
    parser.add_argument("--deadline", type=float, default=600.0,
                        help="the whole suite stops (and fails) after this many seconds (default 600)")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results",
                        help="where reliability.md and .json go (default bench/results)")
    args = parser.parse_args(argv)
    known = {f.name for f in FAULTS}
    unknown = [name for name in args.faults.split(",") if name not in known]
    if unknown:
        parser.error(f"unknown faults {unknown}; known: {sorted(known)}")
    return args


async def suite(args: argparse.Namespace, run_dir: Path, rows: list[Row]) -> None:
    """Appends a row to ``rows`` per fault done (the caller keeps them if a later one breaks)."""
    env = await asyncio.to_thread(stack.up)
    webhooks, smtp = WebhookReceiver(), SmtpReceiver()
    await webhooks.start()
    smtp.up()
    services = Services(env.kafka_bootstrap, env.database_url, run_dir / "logs",
                        extra_env={"PORTEVOIX_SMTP_HOST": "127.0.0.1", "PORTEVOIX_SMTP_PORT": str(smtp.port)})
    chosen = [f for name in args.faults.split(",") for f in FAULTS if f.name == name]
    tenant, ledger = Tenant(f"rel{uuid.uuid4().hex[:10]}"), Ledger()
    load = Load(services, ledger, tenant, Rates())
    try:
        print(f"services starting (logs in {services.logs})", flush=True)
        await services.start_all()
        await load.open()
        await load.set_up([f.name for f in chosen], webhooks.url)
        print(f"tenant {tenant.name}: {len(ledger.enrolled)} ambassadors, {len(ledger.code_phase)} tracked links",
              flush=True)
        world = World(services, load, ledger, tenant, webhooks, smtp, args.outage)
        for fault in chosen:
            row = await run_fault(world, fault, before=4, after=3, timeout=args.reconcile_timeout)
            rows.append(row)
            state = "ok" if row.ok else "FAILED: " + "; ".join(row.problems[:5] or [row.effect])
            print(f"{row.fault:<40} held {row.load_held:>6}/s accepted {row.accepted:>5} lost {row.lost} "
                  f"duplicated {row.duplicated} recovery {row.recovery_seconds}s — {state}", flush=True)
    finally:
        await load.close()
        services.stop_all()
        smtp.down()
        await webhooks.stop()


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    # The load's own Kafka clients complain loudly (and rightly) while the broker is down.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    temporary = args.run_dir is None
    run_dir = Path(tempfile.mkdtemp(prefix="portevoix-faults-")) if temporary else args.run_dir.resolve()
    isolate_stack(run_dir)
    started = time.monotonic()
    rows: list[Row] = []
    broken: str | None = None
    try:
        asyncio.run(asyncio.wait_for(suite(args, run_dir, rows), args.deadline))
    except TimeoutError:
        broken = f"the suite did not finish within its deadline of {args.deadline:.0f}s"
        print(broken, file=sys.stderr, flush=True)
    except Exception as error:  # noqa: BLE001 - reported with the rows done so far
        broken = f"the suite stopped: {error!r}"
        print(broken, file=sys.stderr, flush=True)
    finally:
        if not args.keep_stack:
            with contextlib.suppress(Exception):
                stack.down()
            if temporary and broken is None and all(r.ok for r in rows):
                shutil.rmtree(run_dir, ignore_errors=True)
    print("\n" + table(rows))
    context = {"finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
               "machine": f"{platform.machine()}, {os.cpu_count()} cores", "rates": asdict(Rates()),
               "seconds": round(time.monotonic() - started), "outage_seconds": args.outage, "broken": broken}
    write_results(rows, args.results, context)
    ok = broken is None and len(rows) == len(args.faults.split(",")) and all(r.ok for r in rows)
    print(f"{'all faults reconciled' if ok else 'FAILED'} in {context['seconds']}s; "
          f"{args.results / 'reliability.md'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
