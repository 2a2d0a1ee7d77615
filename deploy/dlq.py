"""Dead letters: list them, and re-inject them once their cause is fixed.

    python -m deploy.dlq list   --topic hr.employees.v1 [--consumer NAME] [--since ISO]
    python -m deploy.dlq replay --topic hr.employees.v1 [--consumer NAME] [--since ISO] [--dry-run]

Reads ``<topic>.dlq`` from its start up to its end at launch (so it terminates) and, for
``replay``, produces each selected record's original key, bytes and headers (without the
``x-portevoix-*`` headers the consumer added) to ``<topic>``, waiting for Kafka's ack. Every
consumer group of ``<topic>`` sees it again: the groups that had processed it skip it (their inbox
has its CloudEvents id), so replaying twice has one effect. ``--consumer`` selects the dead letters
of one consumer group (``x-portevoix-dlq-consumer``), ``--since`` those dead-lettered at or after
an ISO time. Kafka: ``PORTEVOIX_KAFKA_BOOTSTRAP_SERVERS`` (or ``--bootstrap``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.settings import ServiceSettings

OUR_PREFIX = "x-portevoix-"


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str:
        return next((v.decode(errors="replace") for k, v in self.headers if k == name), "")

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.headers if not k.startswith(OUR_PREFIX)]

    def describe(self) -> str:
        return (f"{self.partition}/{self.offset} at={self.header('x-portevoix-dlq-at') or '?'} "
                f"consumer={self.header('x-portevoix-dlq-consumer') or '?'} id={self.header('ce_id') or '-'} "
                f"type={self.header('ce_type') or '-'} origin={self.header('x-portevoix-origin') or '?'} "
                f"cause={self.header('x-portevoix-dlq-cause')!r}")


def selected(letter: DeadLetter, consumer: str | None, since: datetime | None) -> bool:
    if consumer and letter.header("x-portevoix-dlq-consumer") != consumer:
        return False
    if since is not None:
        try:
            at = datetime.fromisoformat(letter.header("x-portevoix-dlq-at"))
        except ValueError:
            return False
        if at < since:
            return False
    return True


async def read_dead_letters(bootstrap: str, topic: str) -> list[DeadLetter]:
    """Every record of ``<topic>.dlq`` present at launch, in partition and offset order."""
    dlq = f"{topic}.dlq"
    consumer = AIOKafkaConsumer(dlq, bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        for _ in range(100):  # without a group, every partition is assigned once the metadata is in
            if consumer.assignment():
                break
            await asyncio.sleep(0.1)
        partitions = sorted(consumer.assignment(), key=lambda tp: tp.partition)
        if not partitions:
            raise SystemExit(f"no topic {dlq}")
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        letters: list[DeadLetter] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                letters += [DeadLetter(tp.partition, r.offset, r.key, r.value, tuple(r.headers or ()))
                            for r in records if r.offset < ends[tp]]
        return sorted(letters, key=lambda d: (d.partition, d.offset))
    finally:
        await consumer.stop()


async def replay(bootstrap: str, topic: str, letters: Sequence[DeadLetter]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for letter in letters:
            sent = await producer.send_and_wait(topic, value=letter.value, key=letter.key,
                                                headers=letter.original_headers)
            print(f"replayed {letter.describe()} -> {topic}/{sent.partition}/{sent.offset}")
    finally:
        await producer.stop()


async def run(args: argparse.Namespace) -> int:
    bootstrap = args.bootstrap or ServiceSettings().kafka_bootstrap_servers
    since = datetime.fromisoformat(args.since) if args.since else None
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    letters = [d for d in await read_dead_letters(bootstrap, args.topic) if selected(d, args.consumer, since)]
    if args.command == "list" or args.dry_run:
        for letter in letters:
            print(("would replay " if args.command == "replay" else "") + letter.describe())
    else:
        await replay(bootstrap, args.topic, letters)
    verb = {"list": "listed", "replay": "would replay" if args.dry_run else "replayed"}[args.command]
    print(f"{verb} {len(letters)} dead letter(s) of {args.topic}.dlq")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m deploy.dlq", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["list", "replay"])
    p.add_argument("--topic", required=True, help="the main topic, e.g. hr.employees.v1 (its .dlq is read)")
    p.add_argument("--consumer", help="only the dead letters of this consumer group")
    p.add_argument("--since", help="only those dead-lettered at or after this ISO time")
    p.add_argument("--dry-run", action="store_true", help="replay: print what would be replayed, send nothing")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: PORTEVOIX_KAFKA_BOOTSTRAP_SERVERS)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
