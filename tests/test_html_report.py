"""The HTML report is one self-contained file and renders in headless Chromium."""

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from siliconomics.catalog.registry import get_model
from siliconomics.report import charts
from siliconomics.report.html import Section, render_html
from siliconomics.report.tco import tco_html
from siliconomics.resolve import default_book, device
from siliconomics.search.tco_study import study_tco

CHROMIUM = next((p for n in ("chromium", "chromium-browser") if (p := shutil.which(n))), None)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _page() -> str:
    s = study_tco(
        device("h100-sxm"),
        model=get_model("llama-3.1-8b"),
        input_len=1000,
        output_len=200,
        tpot_s=0.05,
        book=default_book(),
    )
    return tco_html(s)


def test_page_is_self_contained_with_plotly_inline_once():
    page = render_html(
        "T <x>",
        "takeaway & more",
        [
            Section("a", [charts.bar_chart(["p", "q"], [1.0, 2.0], title="t", y_label="y")]),
            Section(
                "b",
                [
                    charts.pareto_scatter(
                        [("p", 1, 2), ("q", 2, 1), ("r", 3, 3)],
                        title="s",
                        x_label="x",
                        y_label="y",
                        frontier=["p", "q"],
                    ),
                    charts.html_table(["h<"], [["<b>", 1.5]]),
                ],
                note="n",
            ),
        ],
    )
    assert page.count("plotly.js v") == 1  # the library banner: embedded exactly once
    assert not re.search(r"<script[^>]*\bsrc=", page)  # no external scripts
    assert "T &lt;x&gt;" in page and "takeaway &amp; more" in page
    assert "<td>&lt;b&gt;</td>" in page and 'class="num"' in page
    assert page.count('class="plotly-graph-div"') == 2


def test_tco_page_has_every_section():
    page = _page()
    for heading in ("Cost per chip-hour", "Serving llama-3.1-8b", "Rent or buy", "Sensitivity"):
        assert heading in page
    assert "Assumptions and sources" in page and "cbre.com" in page


def _png_pixels(path: Path, max_rows: int) -> tuple[int, int, list[bytes]]:
    """Decode the top ``max_rows`` rows of an 8-bit RGB/RGBA non-interlaced PNG with the
    stdlib (pure Python: the full 1400x2000 page would take seconds)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, ctype = 8, b"", 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = 4 if ctype == 6 else 3
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(min(height, max_rows)):
        f, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def _chromium(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
        capture_output=True,
        timeout=120,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    html = tmp_path / "report.html"
    html.write_text(_page(), encoding="utf-8")
    png = tmp_path / "shot.png"
    args = [f"--screenshot={png}", "--window-size=1400,2000", "--dump-dom", html.as_uri()]
    r = _chromium(args, tmp_path)  # one run: screenshot and the DOM after scripts ran
    assert png.exists(), r.stderr.decode()[-2000:]
    width, height, rows = _png_pixels(png, max_rows=700)  # title, takeaway, first chart
    assert (width, height) == (1400, 2000)
    bpp = len(rows[0]) // width
    colours = {row[x : x + 3] for row in rows[::10] for x in range(0, len(row), bpp * 5)}
    assert len(colours) > 50, f"screenshot looks blank: {len(colours)} colours"
    # the plot colours of the charts are on the page (blue bars of the palette: #4C78A8)
    assert any(abs(c[0] - 0x4C) + abs(c[1] - 0x78) + abs(c[2] - 0xA8) < 12 for c in colours)
    text = r.stdout.decode(errors="replace")
    assert text.count('class="main-svg"') >= 4, "plotly did not render its SVG charts"


def test_unwritable_output_is_a_clear_error(tmp_path):
    """An --html or --trace-out path that cannot be written is a SiliconomicsError naming the
    option (one line in the CLI), not an OSError traceback."""
    import pytest

    from siliconomics.errors import SiliconomicsError
    from siliconomics.report.html import write_output

    with pytest.raises(SiliconomicsError, match="--html: cannot write"):
        write_output(tmp_path / "missing-dir" / "r.html", "<html></html>", "--html")
    ok = tmp_path / "r.html"
    write_output(ok, "<html></html>", "--html")
    assert ok.read_text() == "<html></html>"
