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


def go_environment() -> dict[str, str]:
    """The Go toolchain's environment with the module cache and binaries in our cache."""
    import os

    if shutil.which("go") is None:
        raise RuntimeError("Go is needed for this check (apt-get install -y golang-go, Go 1.24 or newer)")
    home = cache_dir() / "go"
    flags = f"{os.environ.get('GOFLAGS', '')} -modcacherw".strip()  # a cache rm -rf can remove
    return {**os.environ, "GOBIN": str(home / "bin"), "GOMODCACHE": str(home / "mod"), "GOFLAGS": flags,
            "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "local")}


def go_tool(package: str, version: str, binary: str) -> Path:
    """``go install package@version`` (built from the Go module proxy) into the cache; returns the
    binary. A new version installs beside the old one (the binary's name carries it)."""
    target = cache_dir() / "go" / "bin" / f"{binary}-{version}"
    if not target.exists():
        env = go_environment()
        subprocess.run(["go", "install", f"{package}@{version}"], check=True, timeout=1800, env=env)
        (Path(env["GOBIN"]) / binary).rename(target)
    return target


def go_module(module: str, version: str) -> Path:
    """The source folder of ``module@version`` from the Go module proxy (e.g. to read CRDs it ships)."""
    import json

    found = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"], check=True, timeout=900,
                           capture_output=True, text=True, env=go_environment())
    return Path(json.loads(found.stdout)["Dir"])
