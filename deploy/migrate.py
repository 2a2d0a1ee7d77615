"""Apply one service's database migrations and exit: ``python -m deploy.migrate <service>``.

The Helm chart runs it as a Job before an upgrade rolls the pods, so a release's migrations run once,
with the new image, before any new replica starts. It takes the same per-schema advisory lock as a
starting replica (shared.db.migrate): a replica starting meanwhile waits, then finds nothing to do.
Connection settings are the service's own (PORTEVOIX_DATABASE_URL, or PGUSER / PGPASSWORD beside it).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from pathlib import Path

from shared import db
from shared.settings import ServiceSettings

SERVICES = ("content", "distribution", "tracking", "reporting", "web")
log = logging.getLogger("portevoix.migrate")


def migrations_of(service: str) -> Path:
    package = importlib.import_module(f"services.{service}")
    return Path(package.__file__).parent / "migrations"  # type: ignore[arg-type]


async def migrate(service: str, settings: ServiceSettings) -> list[str]:
    pool = await db.create_pool(settings.database_url.get_secret_value(), service, min_size=1, max_size=1)
    try:
        return await db.migrate(pool, service, migrations_of(service))
    finally:
        await pool.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("service", choices=SERVICES)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    applied = asyncio.run(migrate(args.service, ServiceSettings()))
    log.info("%s: %d migration(s) applied%s", args.service, len(applied), f": {', '.join(applied)}" if applied else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
