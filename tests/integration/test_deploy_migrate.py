"""The chart's migration Job (``python -m deploy.migrate <service>``) as the chart runs it: as the
service's own login role, which owns only its schema and may not create schemas in the database
(the CloudNativePG roles of deploy/helm), its credentials in PGUSER / PGPASSWORD beside a URL
without them. The first run applies the migrations, the second finds nothing to do, and the role
reads no other service's schema."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

pytestmark = pytest.mark.integration


def migrate(service: str, url: str, user: str, password: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PORTEVOIX_DATABASE_URL": url, "PGUSER": user, "PGPASSWORD": password}
    return subprocess.run([sys.executable, "-m", "deploy.migrate", service], env=env, capture_output=True,
                          text=True, check=False, timeout=120)


async def test_the_migration_job_runs_as_a_role_owning_only_its_schema_once(database_url):
    suffix = uuid.uuid4().hex[:8]
    database, role, password = f"chart_{suffix}", f"web_{suffix}", f"pw-{suffix}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
    address = urlsplit(database_url)
    url = f"postgresql://{address.hostname}:{address.port}/{database}"
    try:
        owner = await asyncpg.connect(urlunsplit(address._replace(path=f"/{database}")))
        try:  # what the chart's CloudNativePG Database declares: each schema owned by its service's role
            await owner.execute(f'REVOKE CREATE ON DATABASE "{database}" FROM PUBLIC')
            await owner.execute(f'CREATE SCHEMA web AUTHORIZATION "{role}"')
            await owner.execute("CREATE SCHEMA content; CREATE TABLE content.items (secret text)")
        finally:
            await owner.close()

        first = migrate("web", url, role, password)
        assert first.returncode == 0, first.stderr
        assert "web: 0 migration(s) applied" not in first.stderr and "migration(s) applied: " in first.stderr
        again = migrate("web", url, role, password)
        assert again.returncode == 0, again.stderr
        assert "web: 0 migration(s) applied" in again.stderr

        conn = await asyncpg.connect(url, user=role, password=password)
        try:
            tables = await conn.fetch("SELECT tableowner FROM pg_tables WHERE schemaname = 'web'")
            assert tables and {t["tableowner"] for t in tables} == {role}
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch("SELECT * FROM content.items")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("CREATE SCHEMA elsewhere")
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()
