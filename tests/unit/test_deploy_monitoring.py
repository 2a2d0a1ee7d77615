"""The shipped Prometheus configuration and alert rules: valid, and the alerts fire when they
should (promtool's own rule unit tests)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROMETHEUS = Path(__file__).parents[2] / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool not installed (.ci/run installs it)")
    return subprocess.run([binary, *args], capture_output=True, text=True, cwd=PROMETHEUS)


def test_alert_rules_are_valid():
    checked = promtool("check", "rules", "rules/portevoix.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_alert_rules_fire_as_their_unit_tests_expect():
    tested = promtool("test", "rules", "tests/portevoix_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.parametrize("config", ["prometheus.local.yml"])
def test_scrape_configs_are_valid(config):
    checked = promtool("check", "config", "--syntax-only", config)
    assert checked.returncode == 0, checked.stdout + checked.stderr
