"""python -m bench all | foundation [--only NAME] [--events N] [--repeat R] | distribution|tracking|reporting ...

`all` runs the four suites one after the other on one stack; each suite writes its own results.

`foundation` (the default) runs the shared mechanisms' benchmarks against the real Kafka broker
and PostgreSQL and writes bench/results/foundation.json and bench/results/foundation.md.

The servers are those of KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when set, else the local stack
(deploy.local), started if needed and stopped at the end only if this run started it.
With --only, the other benchmarks' results already in the file are kept (each entry carries
its own date and event count).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import platform
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import foundation

RESULTS = Path(__file__).parent / "results"


SUITES = ("foundation", "distribution", "tracking", "reporting")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["all"]:
        return run_all()
    if argv[:1] and argv[0] in SUITES[1:]:
        return importlib.import_module(f"bench.{argv[0]}").main(argv[1:])
    if argv[:1] == ["foundation"]:
        argv = argv[1:]
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=foundation.BENCHMARKS, metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(foundation.BENCHMARKS)}")
    parser.add_argument("--events", type=int, default=20_000, metavar="N", help="events per benchmark (20000)")
    parser.add_argument("--repeat", type=int, default=3, metavar="R",
                        help="runs of each side, the best kept (3)")
    parser.add_argument("--results", type=Path, default=RESULTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.events < 1 or args.repeat < 1:
        parser.error("--events and --repeat must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    for name in ("faststream", "faststream.access.kafka"):
        # FastStream sets its own level and stdout handler on these; a filter outlives both.
        logging.getLogger(name).addFilter(lambda record: record.levelno >= logging.WARNING)

    from deploy.local import stack
    from deploy.local.common import LocalStackError

    started = time.perf_counter()
    load_before = os.getloadavg()
    already_running = stack.is_running()
    try:
        env = stack.up()
    except LocalStackError as error:
        print(f"error: {error}", file=sys.stderr)
        if not already_running:
            stack.down()  # whatever part did start
        return 1
    try:
        outcome = asyncio.run(foundation.run(env.kafka_bootstrap, env.database_url,
                                             events=args.events, repeat=args.repeat, only=args.only))
        server_versions = asyncio.run(_server_versions(env.database_url))
    finally:
        if not already_running:
            stack.down()

    report = _report(outcome, args, started, load_before, already_running, env.kafka_bootstrap, server_versions)
    json_path, md_path = _write(report, args.results)
    print(md_path.read_text())
    print(f"results: {json_path} and {md_path}", file=sys.stderr)
    return 0 if all(r.get("check", {}).get("ok", True) for r in outcome["results"].values()) else 2


async def _server_versions(database_url: str) -> dict[str, str]:
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        return {"postgresql": await conn.fetchval("SHOW server_version")}
    finally:
        await conn.close()


def _report(outcome: dict[str, Any], args: argparse.Namespace, started: float, load_before: tuple[float, ...],
            already_running: bool, kafka_bootstrap: str, server_versions: dict[str, str]) -> dict[str, Any]:
    from deploy.local import kafka as local_kafka

    packages = {name: _version(name) for name in ("aiokafka", "asyncpg", "faststream", "pydantic")}
    kafka_version = ("external" if os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
                     else getattr(local_kafka, "KAFKA_VERSION", "unknown"))
    return {
        "benchmark": "foundation",
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "events": args.events,
        "repeat": args.repeat,
        "only": args.only,
        "run_seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mib": foundation.peak_rss_mib(),
        "machine": {
            "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "stack": {"started_by_this_run": not already_running, "kafka_bootstrap": kafka_bootstrap,
                  "kafka_version": kafka_version, **server_versions},
        "packages": packages,
        "event": {"type": foundation.EVENT_TYPE, "topic": foundation.TOPIC.name,
                  "partitions": foundation.TOPIC.partitions, "bytes": outcome.get("record_bytes")},
        "ratio_definition": "shared throughput / raw throughput (1.0 = the raw ceiling)",
        "results": outcome["results"],
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _write(report: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / "foundation.json", folder / "foundation.md"
    if report["only"] and json_path.exists():
        try:
            previous = json.loads(json_path.read_text()).get("results", {})
        except (OSError, ValueError):
            previous = {}
        report["results"] = {**previous, **report["results"]}
        report["results"] = {name: report["results"][name] for name in foundation.BENCHMARKS
                             if name in report["results"]}
    for path, text in ((json_path, json.dumps(report, indent=2) + "\n"), (md_path, _markdown(report))):
        tmp = path.with_name(path.name + ".tmp")  # whole files or nothing (.gitignore'd)
        tmp.write_text(text)
        tmp.replace(path)
    return json_path, md_path


def _rate(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "-"
    return f"{entry['events_per_second']:,.0f} ev/s ({entry['seconds']:.2f} s)"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _markdown(report: dict[str, Any]) -> str:
    results = report["results"]
    size = (report["event"].get("bytes") or {}).get("total")
    lines = [
        "# Foundation benchmark",
        "",
        f"Run {report['run_at']}, {report['run_seconds']} s, {report['machine']['cpus']} CPUs, "
        f"load {report['machine']['loadavg_before'][0]} → {report['machine']['loadavg_after'][0]}; "
        f"Kafka {report['stack']['kafka_version']}, PostgreSQL {report['stack'].get('postgresql')}. "
        f"Events: `{report['event']['type']}` on `{report['event']['topic']}` "
        f"({report['event']['partitions']} partitions), ~{size:.0f} bytes each (key + value + headers)."
        if size else f"Run {report['run_at']}.",
        "",
        "Ratio = shared throughput / raw ceiling throughput (1.0 = as fast as the raw ceiling).",
        "",
        "| benchmark | events | shared mechanism | raw ceiling | ratio | check |",
        "|---|---:|---:|---:|---:|---|",
    ]
    labels = {
        "outbox_write": "outbox write: `enqueue` (COPY, 1 tx) vs plain COPY",
        "outbox_relay": "outbox relay: `relay_once` loop vs plain pipelined producer",
        "consumer": "idempotent consumer: `Service` (1 INSERT/event) vs plain consumer",
    }
    for name in foundation.BENCHMARKS:
        r = results.get(name)
        if not r:
            continue
        lines.append(f"| {labels[name]} | {r['events']:,} | {_rate(r['shared'])} | {_rate(r['raw'])} | "
                     f"{r['ratio']:.2f} | {'ok' if r['check']['ok'] else 'FAILED'} |")
    lines += ["", f"Best of {report['repeat']} runs per side. Diagnostics:", ""]
    if r := results.get("outbox_write"):
        d = r["diagnostics"]
        lines.append(f"- outbox write: building the rows (to_binary + headers JSON) takes "
                     f"{d['row_build_seconds']:.3f} s "
                     f"({d['row_build_us_per_event']} µs/event) of enqueue's {r['shared']['seconds']:.3f} s; "
                     f"the rest (COPY, commit), ~{d['copy_part_seconds']:.3f} s, vs the plain COPY's "
                     f"{r['raw']['seconds']:.3f} s.")
    if r := results.get("outbox_relay"):
        d, rounds = r["diagnostics"], r["shared"]["round_seconds"] or {}
        lines.append(f"- outbox relay: {r['shared']['rounds']} calls of `relay_once` (rounds of "
                     f"{r['relay_batch_size']}, several per call, overlapped), call time first "
                     f"{rounds.get('first')} s, median {rounds.get('median')} s, last {rounds.get('last')} s. "
                     f"Plain producer awaiting each batch of {r['relay_batch_size']} before the next: "
                     f"{_rate(d['raw_awaiting_each_batch'])}. Stricter ceiling, the plain producer queueing the "
                     f"records in batches per partition as the relay does: {_rate(d['raw_keyed_batches'])}, "
                     f"ratio {d['raw_keyed_batches']['ratio_of_shared']}.")
    if r := results.get("consumer"):
        d, s, raw = r["diagnostics"], r["shared"], r["raw"]
        lines.append(f"- consumer: batch size (consumer_max_records) {r['consumer_max_records']}; service start() "
                     f"{s['start_up_seconds']:.2f} s, first effect after {s.get('first_after_seconds', 0):.2f} s; "
                     f"steady {_num(s.get('steady_events_per_second'))} ev/s vs plain consumer steady "
                     f"{_num(raw.get('steady_events_per_second'))} ev/s (steady ratio {r.get('steady_ratio')}).")
        lines.append(f"- consumer, same Service with a handler that writes nothing (the helper's own cost): "
                     f"{_rate(d['service_inbox_only'])}, ratio {d['service_inbox_only']['ratio_to_raw']}; "
                     f"envelope + contract validation alone: {d['decode_us_per_event']} µs/event.")
        lines.append(f"- consumer, hand-rolled (plain consumer, inbox claim, 1 tx per batch, no FastStream): "
                     f"one INSERT per event {_rate(d['hand_rolled_per_event_insert'])}; one multi-row INSERT "
                     f"per batch {_rate(d['hand_rolled_batched_insert'])}.")
    lines += ["", f"Peak RSS of the benchmark process: {report['peak_rss_mib']} MiB.", ""]
    return "\n".join(lines)


def run_all() -> int:
    from deploy.local import stack

    already_running = stack.is_running()
    stack.up()  # once for the four (each suite leaves a stack it did not start running)
    try:
        failures = [name for name in SUITES if main([name]) != 0]
    finally:
        if not already_running:
            stack.down()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
