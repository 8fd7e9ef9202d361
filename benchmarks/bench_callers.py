"""What the callers of the estimate gain from the fast paths, each timed against its previous
construction in the same run (best-of-N on both sides, min / median / max printed; CPU time, which the other jobs of
a shared machine disturb less than wall time).

* ``compare`` (and ``tco``, which calls the same search): :func:`best_on_chip` screens every
  layout with the time-only fast path and runs the reference estimate only on layouts that can
  still win, against :func:`best_on_chip_reference` (the reference estimate on every layout),
  over every catalog chip, for three requests. The two must choose the same layout and batch
  with the same figures; the bench checks it and says so. The fast path keeps the step kernel
  of each layout between calls, so the screened search is also timed with the kernels built
  anew in every run (what a one-shot ``siliconomics compare`` pays).
* start-up: ``import siliconomics.cli`` in a fresh interpreter, against the same plus the
  modules it no longer imports up front (plotly, scipy.optimize, scipy.sparse); and the
  packaged band table read by the line reader against ``tomllib``.

    .venv/bin/python benchmarks/bench_callers.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from siliconomics import resolve
from siliconomics.catalog.bandtable import loads_band_toml
from siliconomics.inference import kernel
from siliconomics.search.compare import best_on_chip, best_on_chip_reference

REQUESTS = [
    # model, input, output, ttft (s), tpot (s)
    ("llama-3.1-70b", 1500, 300, None, 0.06),
    ("llama-3.1-8b", 1024, 256, 1.0, 0.03),
    ("deepseek-v3", 1000, 200, None, 0.05),
]


def timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """CPU seconds of ``repeats`` calls after one untimed warm-up call, and the last result
    (CPU time of this process: the steadier measure on a shared machine; the work is one
    thread)."""
    out = fn()
    ts = []
    for _ in range(repeats):
        t0 = time.process_time()
        out = fn()
        ts.append(time.process_time() - t0)
    return ts, out


def spread(ts: list[float]) -> str:
    return f"{min(ts) * 1e3:8.1f} / {statistics.median(ts) * 1e3:8.1f} / {max(ts) * 1e3:8.1f} ms"


def line(label: str, new: list[float], old: list[float]) -> None:
    print(f"  {label:<44} new {spread(new)}")
    print(f"  {'':<44} old {spread(old)}")
    print(
        f"  {'':<44} speed-up {min(old) / min(new):5.2f}x best/best, "
        f"{statistics.median(old) / statistics.median(new):5.2f}x median/median"
    )


def _choice_key(ch: Any) -> tuple[Any, ...]:
    if not ch.feasible:
        return (ch.chip.id, ch.reason)
    vals = tuple(ch.value(k) for k in ("batch", "ttft_s", "tpot_s", "tokens_per_s"))
    return (ch.chip.id, ch.assessment.estimate.plan, ch.index, vals)


def bench_compare(repeats: int) -> None:
    devs = resolve.devices(None)
    pricing = resolve.pricing("on-demand")
    print(f"compare: best layout on each of {len(devs)} catalog chips (on-demand prices)")
    for model_id, i, o, ttft, tpot in REQUESTS:
        model = resolve.model(model_id)
        kw = dict(
            input_len=i,
            output_len=o,
            ttft_s=ttft,
            tpot_s=tpot,
            weight_dtype="bf16",
            act_dtype="bf16",
            kv_dtype="bf16",
            price_overrides=pricing,
        )

        def run(fn: Callable[..., Any], model: Any = model, kw: dict[str, Any] = kw) -> list[Any]:
            return [fn(model, d, **kw) for d in devs]

        def cold(run: Callable[..., Any] = run) -> list[Any]:
            kernel._CACHE.clear()  # the step kernels built anew, as in a one-shot command
            return run(best_on_chip)

        new, got = timed(partial(run, best_on_chip), repeats)
        new_cold, _ = timed(cold, repeats)
        old, ref = timed(partial(run, best_on_chip_reference), repeats)
        same = [_choice_key(a) for a in got] == [_choice_key(b) for b in ref]
        label = f"{model_id} in {i} out {o} ttft {ttft} tpot {tpot}"
        line(label, new, old)
        line("  the same, step kernels built in each run", new_cold, old)
        print(f"  {'':<44} same choices and figures: {'yes' if same else 'NO'}")


def _fresh(code: str, repeats: int) -> list[float]:
    """CPU seconds (user + system) of ``code`` in a fresh interpreter, per run."""
    ts = []
    for _ in range(repeats):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", code], check=True)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        ts.append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
    return ts


def bench_startup(repeats: int) -> None:
    print("start-up (fresh interpreter per run, its CPU time)")
    base = "import siliconomics.cli"
    eager = base + "; import plotly.graph_objects, scipy.optimize, scipy.sparse"
    new, old = _fresh(base, repeats), _fresh(eager, repeats)
    line("import siliconomics.cli (lazy vs + eager)", new, old)
    path = Path(str(resources.files("siliconomics.catalog") / "data" / "bands.toml"))
    text = path.read_text(encoding="utf-8")
    fast, got = timed(lambda: loads_band_toml(text), repeats)
    slow, ref = timed(lambda: tomllib.loads(text), repeats)
    line(f"band table ({text.count(chr(10))} lines): reader vs tomllib", fast, slow)
    print(f"  {'':<44} same table: {'yes' if got == ref else 'NO'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(
        f"bench_callers: {args.repeats} timed runs per side after a warm-up; CPU time, "
        "min / median / max"
    )
    bench_compare(args.repeats)
    bench_startup(args.repeats)


if __name__ == "__main__":
    main()
