"""Docs are tested: every `$ siliconomics ...` line in README.md and docs/ runs and exits 0."""

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMANDS = [
    (doc.name, line.strip()[2:])
    for doc in DOCS
    for line in doc.read_text().splitlines()
    if line.strip().startswith("$ siliconomics ")
]


def test_docs_have_examples():
    assert len(COMMANDS) >= 6


@pytest.mark.parametrize(("doc", "cmd"), COMMANDS)
def test_doc_command_runs(doc, cmd, shared):
    args = shlex.split(cmd)[1:]
    args = [a.replace("../shared", str(shared)) for a in args]
    r = subprocess.run(
        [sys.executable, "-m", "siliconomics.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, f"{doc}: {cmd}\n{r.stderr[-2000:]}"
    assert r.stdout.strip()
