"""Chunked prefill with TensorRT-LLM's attention-DP balancing (``attention_dp_config`` with
``enable_balance``), for a replica whose attention runs data-parallel over ``dp`` ranks.

TensorRT-LLM holds new context requests back so that the ranks run their context phases in the
same iteration (``PyExecutor._balance_adp_requests``, tensorrt_llm/_torch/pyexecutor/
py_executor.py): when every rank has a context request (and free slots), they are scheduled,
after ``batching_wait_iters`` more iterations if every rank also decodes; otherwise they wait,
an iteration counter grows, and at ``timeout_iters`` (or when some rank has nothing to decode)
whatever waits is released and the counter restarts. The counter runs whether or not anything
waits, so releases fall every ``timeout_iters`` iterations.

The replica is simulated as one engine, so "every rank has a context request" is read as "at
least ``dp`` prompts wait" (the executor spreads new requests over the ranks) and "every rank
decodes" as "at least ``dp`` sequences decode". While a prompt is held the engine steps one
decode at a time (the release iteration is not skipped by a multi-step run).
"""

from __future__ import annotations

from .chunked import ChunkedEngine


class AdpBalancedEngine(ChunkedEngine):
    name = "chunked+adp-balance"

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)
        self.dp = 1
        self.timeout_iters = 1
        self.batching_wait_iters = 0
        self._wait = 0
        self._batching = 0
        self._k_seen = 0
        self._open = True

    def _gate(self) -> bool:
        """This iteration's decision: may new prompts start (TensorRT-LLM's rule)?"""
        skipped = max(self.k - self._k_seen - 1, 0)  # iterations inside a decode run
        self._k_seen = self.k
        self._wait = (self._wait + skipped) % self.timeout_iters
        all_gen = self.n_dec >= self.dp
        if len(self.waiting) >= self.dp and self.n_dec < self.max_seqs:
            self._wait = 0
            if all_gen and self._batching < self.batching_wait_iters:
                self._batching += 1
                return False
            self._batching = 0
            return True
        self._wait += 1
        if self._wait >= self.timeout_iters or not all_gen:
            self._wait = 0
            return True
        return False

    def start_step(self, t: float) -> float | None:
        if self.ready:
            self.admit_ready()
        self._open = self._gate()
        return super().start_step(t)

    def admission_blocked(self) -> bool:
        return not self._open or super().admission_blocked()

    def _admit(self, t: float, budget: int) -> int:
        return super()._admit(t, budget) if self._open else budget

    def decode_run(self, t: float) -> float | None:
        if self.waiting:  # held prompts: one iteration at a time until the release
            return None
        return super().decode_run(t)
