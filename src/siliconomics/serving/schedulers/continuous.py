"""Continuous batching, prefill first (vLLM's scheduler before chunked prefill; Orca-style
iteration-level scheduling, Yu et al., OSDI 2022).

Each step either prefills a batch of whole waiting prompts (as many as fit the token budget
``max_batched_tokens``, the sequence limit ``max_seqs`` and the free KV blocks above a 1%
watermark) or, when none can be admitted, runs one decode step for every running sequence.
Decode steps that run out of KV blocks preempt the newest sequences (recomputation).

Multi-step scheduling (vLLM V0 ``num_scheduler_steps`` = ``multi_step`` > 1): a decode round
runs ``multi_step`` steps back to back without calling the scheduler, so a waiting prompt is
admitted only at the end of a round. Rounds are counted in decode steps from the last prefill
step (the decode counter ``k``): admission is checked only when ``(k - k0) % multi_step == 0``.
Prefill steps are thus at most one per round, and batch the prompts that arrived during it.
"""

from __future__ import annotations

from ..engine import Engine


class ContinuousEngine(Engine):
    name = "continuous"

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self._batch: list[tuple[int, int]] = []
        self.multi_step = 1
        """decode steps per scheduler call (vLLM ``num_scheduler_steps``)"""
        self._k0 = 0  # decode counter at the end of the last prefill step

    def _mid_round(self) -> bool:
        return self.multi_step > 1 and (self.k - self._k0) % self.multi_step != 0

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
        if self.n_dec and self._mid_round():
            return self._decode(t, run=not self.waiting)
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
        return self._decode(t, run=True)

    def _decode(self, t: float, *, run: bool) -> float | None:
        """A decode run (``run``: nothing can be admitted before it ends, or an arrival cuts
        it) or one decode step (a prompt waits for the end of the multi-step round)."""
        if run:
            dur = self.decode_run(t)
            if dur is not None:
                return dur
        self.reserve_decode_blocks()
        if not self.n_dec:  # everything was preempted: prefill next
            return self.start_step(t)
        dur = self.stm.decode_step(self.n_dec, self.ctx_sum)
        self.record(t, dur, self.n_dec, self.dec_tokens(), "decode")
        return dur

    def finish_step(self, t: float) -> None:
        if self.run_steps:
            self.end_decode_run(t)
        elif self._batch:
            for rid, p in self._batch:
                self.prefilled(rid, p, t)
            self._batch = []
            self._k0 = self.k
        else:
            self.end_decode_step(t)
