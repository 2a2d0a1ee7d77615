"""Outside checkers the tests run against our artefacts: tools nobody here wrote, installed on
first use into the cache (`~/.cache/portevoix`, or PORTEVOIX_CACHE_DIR) from their registries."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from deploy.local.common import cache_dir


def npm_package(name: str, version: str) -> Path:
    """``name@version`` installed from the npm registry with the machine's Node.js; returns the
    folder whose ``node_modules`` holds it (a script run from there can import it)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("Node.js and npm are needed for this check: apt-get install -y nodejs npm")
    home = cache_dir() / "npm" / f"{name.replace('/', '+')}@{version}"
    if not (home / "node_modules" / name / "package.json").exists():
        home.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(home),
                        f"{name}@{version}"], check=True, timeout=600)
    return home
