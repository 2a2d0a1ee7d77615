"""The generated AsyncAPI documents, read by the AsyncAPI Initiative's own parser (the one its
tools and code generators use): no error-level diagnostic."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.tools import npm_package

DOCS = Path(__file__).parents[2] / "docs" / "asyncapi"
CHECK = """
import { Parser } from '@asyncapi/parser';
import fs from 'node:fs';
const parser = new Parser();
for (const file of process.argv.slice(1)) {
  const { diagnostics } = await parser.parse(fs.readFileSync(file, 'utf8'));
  for (const d of diagnostics.filter(d => d.severity === 0))
    console.log(`${file}: ${d.code} ${d.message} at ${d.path.join('.')}`);
}
"""


def test_every_asyncapi_document_parses_without_errors() -> None:
    home = npm_package("@asyncapi/parser", "3.6.6")
    documents = sorted(str(p) for p in DOCS.glob("*.json"))
    assert len(documents) == 5
    run = subprocess.run(["node", "--input-type=module", "-e", CHECK, *documents], cwd=home, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "", run.stdout
