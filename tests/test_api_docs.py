"""docs/API.md is a notebook-style session: its python blocks run in order, in one namespace."""

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
API_DOC = ROOT / "docs" / "API.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_api_doc_has_a_session():
    assert len(python_blocks(API_DOC.read_text(encoding="utf-8"))) >= 5


def test_api_doc_session_runs(capsys: pytest.CaptureFixture[str]) -> None:
    ns: dict[str, object] = {"__name__": "api_doc"}
    cwd = os.getcwd()
    os.chdir(ROOT)  # the session uses repo-relative paths, as a user in a checkout would
    try:
        for i, block in enumerate(python_blocks(API_DOC.read_text(encoding="utf-8"))):
            try:
                exec(compile(block, f"docs/API.md block {i + 1}", "exec"), ns)
            except Exception as e:  # name the block, then fail
                pytest.fail(f"docs/API.md block {i + 1} failed: {type(e).__name__}: {e}")
    finally:
        os.chdir(cwd)
    assert "TTFT" in capsys.readouterr().out
