"""The fast band-table reader gives what tomllib gives, and hands anything unusual to it."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest

from siliconomics.catalog.bandtable import loads_band_toml


def test_packaged_table_reads_as_tomllib_reads_it() -> None:
    path = Path(str(resources.files("siliconomics.catalog") / "data" / "bands.toml"))
    text = path.read_text(encoding="utf-8")
    assert loads_band_toml(text) == tomllib.loads(text)


@pytest.mark.parametrize(
    "text",
    [
        '[meta]\nlevel = "0.8"\n\n[[residual]]\nid = "A"\nlog_ratio = -0.25\nscale = 1\n'
        "family_scale = 1.5e-3\n",
        '[[residual]]\nid = "tab\\tescaped"\nlog_ratio = 0.5\n',  # escape: tomllib
        '[[residual]]\nid = "A" # comment\nlog_ratio = 0.5\n',  # comment: tomllib
        "[[residual]]\nx = inf\ny = 1_000\n",  # TOML-only numbers: tomllib
        '[other]\nk = "v"\n[[residual]]\nid = "B"\n',  # another table: tomllib
        '[[residual]]\nid = "é and 中"\nv = +3\nw = -0.0\n',
    ],
)
def test_small_tables(text: str) -> None:
    assert loads_band_toml(text) == tomllib.loads(text)


@pytest.mark.parametrize("text", ['[[residual]]\nid = "A"\nid = "B"\n', "[[residual]]\nv = 01\n"])
def test_invalid_toml_raises_as_tomllib_does(text: str) -> None:
    with pytest.raises(tomllib.TOMLDecodeError):
        loads_band_toml(text)
