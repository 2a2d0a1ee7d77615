"""python -m deploy.local up | down | status | env

up      start Kafka and PostgreSQL (unless running or given by KAFKA_BOOTSTRAP_SERVERS /
        DATABASE_URL), create the registry's topics, print the env lines
down    stop what `up` started
status  say what runs (exit 0 when everything runs, 3 otherwise)
env     print the env lines of the running stack (exit 3 when it does not run)

Progress goes to stderr, env lines to stdout: `eval "$(python -m deploy.local up)"` works.
"""

from __future__ import annotations

import argparse
import sys

from . import stack
from .common import LocalStackError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.local",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "down", "status", "env"])
    command = parser.parse_args(argv).command
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
