"""The README's accuracy figures are quoted from the generated docs/VALIDATION.md (the grouped
cross-validation headline): recompute each from the document and require the README to say
exactly that (whitespace-insensitive)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _doc() -> str:
    return (ROOT / "docs" / "VALIDATION.md").read_text(encoding="utf-8")


def _readme() -> str:
    return _flat((ROOT / "README.md").read_text(encoding="utf-8"))


def _headline(kind: str) -> tuple[str, ...]:
    """(CV median, rows, sources, in-sample median, band coverage) of ``kind``."""
    m = re.search(
        rf"\*\*{kind}: cross-validated median \|error\| ([\d.]+)%\*\* \((\d+) rows, (\d+) "
        r"sources; in-sample ([\d.]+)%\); 80% bands cover (\d+)%",
        _doc(),
    )
    assert m, f"docs/VALIDATION.md has no {kind} headline"
    return m.groups()


def test_readme_quotes_the_cross_validated_headlines():
    i, t = _headline("Inference"), _headline("Training")
    readme = _readme()
    assert (
        f"inference {i[0]}% median |error| over {i[1]} rows from {i[2]} sources, "
        f"training {t[0]}% over {t[1]} rows from {t[2]} sources" in readme
    )
    assert f"80% bands cover {i[4]}% and {t[4]}% of held-out rows" in readme
    assert f"fitted on: {i[3]}% and {t[3]}%" in readme


def test_readme_training_section_quotes_the_training_headline():
    t = _headline("Training")
    readme = _readme()
    assert f"Validated on {t[1]} published training runs" in readme
    assert f"cross-validated median |error| {t[0]}%" in readme
