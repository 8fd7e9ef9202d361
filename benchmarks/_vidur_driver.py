"""Time vidur's start-up and simulation. Run ONLY by ``.bench-venv-vidur/bin/python``.

Called by ``bench_serving.py`` as ``<vidur-venv>/bin/python _vidur_driver.py VIDUR_ARGS...``
(vidur's own command-line flags). It never imports siliconomics. It prints one line
``VIDUR_RESULT {json}`` with:

* ``predictor_s``: building vidur's execution-time predictor (loading the profiling tables,
  grid-searched random-forest fits, predicting its lookup tables), timed by wrapping vidur's
  predictor registry;
* ``startup_s``: the whole ``Simulator(config)`` construction (predictor, cluster, request
  generation);
* ``run_s``: ``Simulator.run()``, the discrete-event simulation (with metrics writing off,
  the run ends with no file output); ``run_cpu_s``: its CPU time (``time.process_time``);
* ``requests``, ``completed``, ``sim_time_s``: what was simulated; ``ttft_p50_s`` and
  ``tpot_p50_s``: vidur's predicted medians (MLPerf TPOT definition, as ours).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def main() -> None:
    sys.argv = ["vidur", *sys.argv[1:]]
    import vidur
    import vidur.scheduler.global_scheduler.base_global_scheduler as gs
    from vidur.config import SimulationConfig
    from vidur.simulator import Simulator

    timing: dict[str, float] = {}
    registry_get = gs.ExecutionTimePredictorRegistry.get

    def timed_get(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = registry_get(*args, **kwargs)
        timing["predictor_s"] = timing.get("predictor_s", 0.0) + time.perf_counter() - t0
        return out

    gs.ExecutionTimePredictorRegistry.get = timed_get  # type: ignore[method-assign]
    cfg = SimulationConfig.create_from_cli_args()
    t0 = time.perf_counter()
    sim = Simulator(cfg)
    t1 = time.perf_counter()
    requests = [ev._request for _, ev in sim._event_queue]
    c1 = time.process_time()
    sim.run()
    t2 = time.perf_counter()
    c2 = time.process_time()
    done = [r for r in requests if r.completed]
    ttft = [r.prefill_completed_at - r.arrived_at for r in done]
    tpot = [
        (r.completed_at - r.prefill_completed_at) / (r.num_decode_tokens - 1)
        for r in done
        if r.num_decode_tokens > 1
    ]
    result = {
        "version": vidur.__version__,
        "predictor_s": timing.get("predictor_s", float("nan")),
        "startup_s": t1 - t0,
        "run_s": t2 - t1,
        "run_cpu_s": c2 - c1,
        "requests": len(requests),
        "completed": len(done),
        "sim_time_s": sim._time,
        "ttft_p50_s": _median(ttft),
        "tpot_p50_s": _median(tpot),
    }
    print("VIDUR_RESULT", json.dumps(result), flush=True)


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else float("nan")


if __name__ == "__main__":
    main()
