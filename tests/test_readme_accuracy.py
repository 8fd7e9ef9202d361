"""The README's accuracy figures are quoted from the generated docs/VALIDATION.md: recompute each
from the document and require the README to say exactly that (whitespace-insensitive)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def _doc() -> str:
    return (ROOT / "docs" / "VALIDATION.md").read_text(encoding="utf-8")


def _headline(kind: str) -> tuple[str, str]:
    m = re.search(
        rf"\*\*Median absolute error: ([\d.]+)% over (\d+) usable {kind} rows\*\*", _doc()
    )
    assert m, f"docs/VALIDATION.md has no {kind} headline"
    return m.group(1), m.group(2)


def _families() -> dict[str, tuple[float, str]]:
    """family -> (median abs %, leave-one-out cell) from the 'By chip family' table."""
    section = _doc().split("## By chip family", 1)[1].split("\n## ", 1)[0]
    out = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and cells[2].endswith("%") and cells[0] != "family":
            out[cells[0]] = (float(cells[2].rstrip("%")), cells[5])
    assert out, "no family table in docs/VALIDATION.md"
    return out


def _fmt(x: float) -> str:
    return f"{x:.1f}%"


def test_readme_quotes_the_inference_headline():
    med, n = _headline("inference")
    assert f"median |error| {med}% over {n} inference rows" in _flat(_readme())


def test_readme_quotes_the_training_headline():
    med, n = _headline("training")
    readme = _flat(_readme())
    assert f"median |error| {med}% over {n} training rows" in readme
    assert f"Validated on {n} published training runs" in readme
    assert f"median |error| {med}%." in readme


def test_readme_quotes_the_family_range_and_leave_one_out():
    fam = _families()
    lo = min(fam, key=lambda f: fam[f][0])
    hi = max(fam, key=lambda f: fam[f][0])
    readme = _flat(_readme())
    assert f"the median runs from {_fmt(fam[lo][0])} ({lo}) to {_fmt(fam[hi][0])} ({hi})" in readme
    for f in ("nvidia-hopper", "aws-neuron-v2"):
        assert f"{fam[f][1]} for {f}" in readme, f


def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")
