"""python -m deploy.local up | down | status | env | topics | token

up      start Kafka and PostgreSQL (unless running or given by KAFKA_BOOTSTRAP_SERVERS /
        DATABASE_URL), create the registry's topics, print the env lines
down    stop what `up` started
status  say what runs (exit 0 when everything runs, 3 otherwise)
env     print the env lines of the running stack (exit 3 when it does not run)
topics  create the registry's missing topics on --bootstrap (docker-compose uses it)
token   print an HS256 API token for local use (--secret or PORTEVOIX_JWT_HS256_SECRET)

Progress goes to stderr, env lines to stdout: `eval "$(python -m deploy.local up)"` works.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import stack
from .common import LocalStackError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.local",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "down", "status", "env", "topics", "token"])
    parser.add_argument("--bootstrap", help="topics: the Kafka bootstrap servers")
    parser.add_argument("--secret", default=os.environ.get("PORTEVOIX_JWT_HS256_SECRET"), help="token: HS256 secret")
    parser.add_argument("--tenant", default="acme", help="token: the tenant claim")
    parser.add_argument("--sub", default="dev-user", help="token: the subject (an employee's HR id for /v1/me)")
    parser.add_argument("--roles", default="admin,editor,approver,analyst", help="token: comma-separated roles")
    parser.add_argument("--subsidiary", help="token: confine the token to this subsidiary")
    args = parser.parse_args(argv)
    command = args.command
    try:
        if command == "up":
            sys.stdout.write(stack.up().env_lines())
        elif command == "down":
            stack.down()
        elif command == "status":
            states = stack.status()
            for name, state in states.items():
                print(f"{name}: {state}")
            return 3 if "stopped" in states.values() else 0
        elif command == "topics":
            from shared.topics import all_topics

            from .kafka import ensure_topics

            if not args.bootstrap:
                parser.error("topics needs --bootstrap")
            created = ensure_topics(args.bootstrap, all_topics())
            print(f"topics created: {len(created)}", file=sys.stderr)
        elif command == "token":
            from shared.auth import issue_token

            if not args.secret:
                parser.error("token needs --secret or PORTEVOIX_JWT_HS256_SECRET")
            print(issue_token(args.secret, subject=args.sub, tenant=args.tenant,
                              roles=[r for r in args.roles.split(",") if r], subsidiary=args.subsidiary,
                              ttl_seconds=12 * 3600))
        else:
            env = stack.running_env()
            if env is None:
                print("the local stack is not running: python -m deploy.local up", file=sys.stderr)
                return 3
            sys.stdout.write(env.env_lines())
    except LocalStackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
