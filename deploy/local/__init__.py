"""The Portevoix stack on one machine without Docker: a real Kafka broker and a real PostgreSQL.

    python -m deploy.local up | down | status | env

From Python: `stack.up()` (returns a StackEnv), `stack.down()`, `stack.status()`,
`kafka.ensure_topics(bootstrap, topics)`.
"""

from .common import LocalStackError
from .kafka import KAFKA_VERSION, ensure_topics, ensure_topics_async
from .stack import StackEnv, down, is_running, running_env, status, up

__all__ = [
    "KAFKA_VERSION",
    "LocalStackError",
    "StackEnv",
    "down",
    "ensure_topics",
    "ensure_topics_async",
    "is_running",
    "running_env",
    "status",
    "up",
]
