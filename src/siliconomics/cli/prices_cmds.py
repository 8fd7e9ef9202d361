"""prices: the dated price book (show, ages, update from providers' price lists), and the
price options every money-printing command shares (--mode, --prices, --region, --price)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import resolve
from ..catalog.registry import chips, parse_toml, systems
from ..catalog.schema import PriceBookFile
from ..economics import price_import
from ..economics.pricebook import MODES, PriceBook, Pricing, age_days
from ..errors import SiliconomicsError
from .common import JsonOpt, app, emit_json, err, out
from .inputs import text_file_or_folder_cb

ModeOpt = Annotated[str, typer.Option("--mode", help=f"pricing mode: {', '.join(MODES)}")]
PricesOpt = Annotated[
    Path | None,
    typer.Option(
        "--prices",
        help="prices file (TOML, docs/ECONOMICS.md), a price-book file or a folder of them "
        "(as written by 'prices update'); added on top of the packaged book",
        callback=text_file_or_folder_cb,
    ),
]
RegionOpt = Annotated[
    str | None, typer.Option("--region", help="use only prices of this region (e.g. us-east-1)")
]
ProviderOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--provider", help="use only prices of this provider (aws, gcp, lambda, ...; repeat)"
    ),
]
PriceOpt = Annotated[
    list[str] | None, typer.Option("--price", help="CHIP=USD per chip-hour (repeat)")
]
MAX_AGE_DAYS = 180
"""A price older than this is flagged by 'siliconomics prices'."""


def load_book(
    prices: Path | None = None, region: str | None = None, provider: list[str] | None = None
) -> PriceBook:
    """The packaged book, plus a user's file or folder of books, restricted to ``region`` and
    ``provider`` (:func:`siliconomics.resolve.price_book`)."""
    return resolve.price_book(prices, region, provider)


def build_pricing(
    mode: str = "on-demand",
    prices: Path | None = None,
    region: str | None = None,
    price: list[str] | None = None,
    *,
    provider: list[str] | None = None,
    utilisation: float = 1.0,
    chip_price: list[str] | None = None,
) -> Pricing:
    """What every money-printing command builds once from its options
    (:func:`siliconomics.resolve.pricing`)."""
    return resolve.pricing(
        mode, prices, region, provider, price, utilisation=utilisation, chip_price=chip_price
    )


prices_app = typer.Typer(
    help="The dated price book: every price with its date, source and age.",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(prices_app, name="prices")


def _rows(book: PriceBook, today: date, include_history: bool, chip: str | None) -> list[dict]:
    current = set(map(id, book.current()))
    rows = []
    for o in book.offerings:
        if (not include_history and id(o) not in current) or (chip and o.chip != chip):
            continue
        if (book.region and o.region != book.region) or (
            book.providers and o.provider not in book.providers
        ):
            continue
        rows.append(
            {
                "provider": o.provider,
                "offering": o.name,
                "chip": o.chip,
                "chips": o.chips,
                "region": o.region,
                "mode": o.mode,
                "usd_per_hour": o.usd_per_hour,
                "usd_per_chip_hour": o.usd_per_chip_hour,
                "as_of": o.as_of,
                "age_days": age_days(o.as_of, today),
                "current": id(o) in current,
                "conf": o.conf,
                "source": o.source,
                "origin": o.origin,
            }
        )
    return sorted(rows, key=lambda r: (r["chip"], r["mode"], r["usd_per_chip_hour"]))


@prices_app.callback()
def prices_cmd(
    ctx: typer.Context,
    chip: Annotated[str | None, typer.Option(help="only this chip")] = None,
    all_: Annotated[bool, typer.Option("--all", help="also superseded (older) prices")] = False,
    max_age_days: Annotated[
        int, typer.Option(min=1, help="flag prices older than this many days")
    ] = MAX_AGE_DAYS,
    prices: PricesOpt = None,
    region: RegionOpt = None,
    provider: ProviderOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the price book: each price's date, age, source; warn on stale ones."""
    if ctx.invoked_subcommand is not None:
        return
    today = date.today()
    book = load_book(prices, region, provider)
    rows = _rows(book, today, all_, chip)
    stale = [r for r in rows if r["current"] and (r["age_days"] or 0) > max_age_days]
    unpriced = sorted(set(chips()) - {o.chip for o in book.current()})
    if as_json:
        emit_json({"as_of": today.isoformat(), "prices": rows, "unpriced_chips": unpriced})
        return
    from rich.table import Table

    t = Table(
        box=None, title=f"Price book ({len(rows)} prices; today {today}; USD/h and sources: --json)"
    )
    for col in ("chip", "offering (provider)", "region", "mode", "$/chip-h", "as of", "age"):
        right = col.startswith(("$", "age"))
        wrap = col.startswith("offering")
        t.add_column(
            col,
            justify="right" if right else "left",
            no_wrap=not wrap,
            overflow="fold" if wrap else "ellipsis",
        )
    for r in rows:
        old = (r["age_days"] or 0) > max_age_days
        t.add_row(
            r["chip"],
            f"{r['offering']} ({r['provider']})" + ("" if r["current"] else " [old]"),
            r["region"],
            r["mode"],
            f"{r['usd_per_chip_hour']:,.3f}",
            r["as_of"],
            f"{r['age_days']} d" + (" !" if old else ""),
        )
    out.print(t)
    out.print(
        f"No listed price (priced by the 'estimated' rule or --price): {', '.join(unpriced)}",
        highlight=False,
    )
    if stale:
        err.print(
            f"warning: {len(stale)} current price(s) older than {max_age_days} days "
            "(marked '!'); refresh with 'siliconomics prices update'",
            highlight=False,
        )


@prices_app.command("update")
def update_cmd(
    source: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="downloaded price list: AWS offer file (JSON), Azure retail prices API "
            "response (JSON), Google Cloud billing SKUs (JSON) or CSV",
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="aws, azure, gcp, csv (default: from the file)")
    ] = "",
    out_dir: Annotated[
        Path, typer.Option("--out", help="folder of dated books (old ones are kept)")
    ] = Path("prices"),
    as_of: Annotated[
        str | None, typer.Option(help="date of the price list (default: from the file, or today)")
    ] = None,
) -> None:
    """Write a new dated price book from a provider's price list, keeping the old books.
    Use the result with --prices FOLDER on any command."""
    if source is None:
        raise SiliconomicsError(
            "prices update: no --from file and this tool does not download (no network); "
            "download a price list (AWS offer file, Azure retail prices API JSON, Google Cloud "
            "SKU JSON or CSV) and pass it with --from FILE"
        )
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as e:
        raise SiliconomicsError(f"--from {source}: cannot read: {e.strerror}") from None
    kind = fmt or price_import.detect_format(source.name, text)
    doc: Any = text if kind == "csv" else _json(source, text)
    book = price_import.parse(kind, doc, systems=systems(), chips=chips(), as_of=as_of)
    if not book.prices:
        raise SiliconomicsError(
            f"--from {source}: no accelerator price the catalog knows was found ({kind} format)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{book.provider}-{book.as_of}.toml"
    n = 1
    while path.exists():
        n += 1
        path = out_dir / f"{book.provider}-{book.as_of}-{n}.toml"
    path.write_text(price_import.to_toml(book), encoding="utf-8")
    parse_toml(path, PriceBookFile)  # what we wrote must load
    out.print(f"wrote {path} ({len(book.prices)} prices, as of {book.as_of})", highlight=False)


def _json(source: Path, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise SiliconomicsError(f"--from {source}: not valid JSON: {e}") from None
