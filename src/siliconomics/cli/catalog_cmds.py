"""Catalog commands: chips, systems, models, show."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..catalog.registry import chips, efficiency_profiles, get_chip, get_model, models, systems
from ..errors import UnknownIdError
from ..report import serialize, tables
from ..report.style import compact_table
from .common import JsonOpt, app, emit_json, out


@app.command("chips")
def chips_cmd(as_json: JsonOpt = False) -> None:
    """List every accelerator in the catalog."""
    if as_json:
        emit_json([serialize.chip_dict(c) for c in chips().values()])
    else:
        out.print(tables.chips_table())


@app.command("systems")
def systems_cmd(as_json: JsonOpt = False) -> None:
    """List every system (cloud instance, TPU slice, server) and the chip it holds."""
    table = systems()
    if as_json:
        emit_json([s.model_dump(mode="json", exclude={"prices"}) for s in table.values()])
        return
    t = compact_table("Systems (prices: 'siliconomics prices')")
    for col in ("id", "chip", "chips", "provider", "scale-up"):
        t.add_column(col, justify="right" if col in ("chips", "scale-up") else "left", no_wrap=True)
    for s in table.values():
        t.add_row(s.id, s.chip, str(s.chips), s.provider, str(s.scale_up_domain or "-"))
    out.print(t)


@app.command("models")
def models_cmd(as_json: JsonOpt = False) -> None:
    """List every model preset."""
    if as_json:
        emit_json([serialize.model_dict(m) for m in models().values()])
    else:
        out.print(tables.models_table())


@app.command("show")
def show_cmd(
    item: Annotated[
        str,
        typer.Argument(help="a chip id, model id, efficiency-profile family, or config.json"),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Show one chip, model or efficiency profile with every number's source."""
    if item in efficiency_profiles():
        p = efficiency_profiles()[item]
        if as_json:
            emit_json(p.model_dump(mode="json"))
        else:
            out.print(tables.profile_detail(p))
        return
    if item in chips():
        c = get_chip(item)
        emit_json(serialize.chip_dict(c)) if as_json else out.print(tables.chip_detail(c))
        return
    if item not in models() and not item.endswith(".json") and not Path(item).is_dir():
        known = [*chips(), *models(), *efficiency_profiles()]
        raise UnknownIdError(
            "chip, model or profile",
            item,
            known,
            listing="see siliconomics chips / siliconomics models",
        )
    m = get_model(item)
    emit_json(serialize.model_dict(m)) if as_json else out.print(tables.model_detail(m))
