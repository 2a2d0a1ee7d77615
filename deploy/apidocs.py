"""Generate the API documents from the code: AsyncAPI (from each service's declared FastStream
publishers and subscribers) and OpenAPI (from each HTTP app), into ``docs/``.

``python -m deploy.apidocs`` writes them; ``--check`` fails when a committed document is stale.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

SERVICES = ("content", "distribution", "tracking", "reporting")
DOCS = Path(__file__).resolve().parents[1] / "docs"


def documents() -> dict[Path, str]:
    # Documents must not depend on where they are generated: fixed placeholders.
    os.environ["PORTEVOIX_KAFKA_BOOTSTRAP_SERVERS"] = "kafka:9092"
    os.environ["PORTEVOIX_JWT_HS256_SECRET"] = "placeholder"
    out: dict[Path, str] = {}
    for name in SERVICES:
        module = importlib.import_module(f"services.{name}.main")
        app = module.create_app()
        service = app.state.service
        asyncapi = service.asyncapi().to_specification().to_jsonable()
        out[DOCS / "asyncapi" / f"{name}.json"] = json.dumps(asyncapi, indent=2, sort_keys=True) + "\n"
        out[DOCS / "openapi" / f"{name}.json"] = json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if a committed document is stale")
    args = parser.parse_args()
    stale = []
    for path, text in documents().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.relative_to(DOCS.parent))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(DOCS.parent)}")
    if stale:
        print("stale API documents (run `make docs` and commit):", *stale, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
