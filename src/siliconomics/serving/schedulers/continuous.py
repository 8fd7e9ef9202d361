"""Continuous batching, prefill first (vLLM's scheduler before chunked prefill; Orca-style
iteration-level scheduling, Yu et al., OSDI 2022).

Each step either prefills a batch of whole waiting prompts (as many as fit the token budget
``max_batched_tokens``, the sequence limit ``max_seqs`` and the free KV blocks above a 1%
watermark) or, when none can be admitted, runs one decode step for every running sequence.
Decode steps that run out of KV blocks preempt the newest sequences (recomputation).
"""

from __future__ import annotations

from ..engine import Engine


class ContinuousEngine(Engine):
    name = "continuous"

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self._batch: list[tuple[int, int]] = []

    def _admit(self, t: float) -> list[tuple[int, int]]:
        L, bs = self.L, self.bs
        batch: list[tuple[int, int]] = []
        tokens = 0
        while self.waiting and self.n_dec + len(batch) < self.max_seqs:
            rid = self.waiting[0]
            p = L.inp[rid] + L.gen[rid]
            if batch and tokens + p > self.max_tokens:
                break
            need = -(-p // bs)
            idle = not batch and not self.n_dec
            if need > self.blocks_free - (0 if idle else self.watermark):
                break
            self.waiting.popleft()
            self.blocks_free -= need
            batch.append((rid, p))
            tokens += p
            if L.scheduled[rid] != L.scheduled[rid]:
                L.scheduled[rid] = t
        return batch

    def start_step(self, t: float) -> float | None:
        self.admit_ready()
        batch = self._admit(t)
        self._batch = batch
        if batch:
            prompts = [p for _, p in batch]
            dur = self.stm.prefill_step(prompts)
            self.load_tokens -= sum(prompts)
            self.record(t, dur, len(batch), sum(prompts), "prefill")
            return dur
        if not self.n_dec:
            return None
        # Nothing could be admitted: until the next finish the decode set keeps its size and
        # free blocks only shrink, so admission stays blocked and a multi-step run is exact.
        run = self.decode_run(t)
        if run is not None:
            return run
        self.reserve_decode_blocks()
        if not self.n_dec:  # everything was preempted: prefill next
            return self.start_step(t)
        dur = self.stm.decode_step(self.n_dec, self.ctx_sum)
        self.record(t, dur, self.n_dec, self.n_dec, "decode")
        return dur

    def finish_step(self, t: float) -> None:
        if self.run_steps:
            self.end_decode_run(t)
        elif self._batch:
            for rid, p in self._batch:
                self.prefilled(rid, p, t)
            self._batch = []
        else:
            self.end_decode_step(t)
