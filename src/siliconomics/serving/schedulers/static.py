"""Static batching with fixed compiled shapes (AWS Neuron transformers-neuronx, XLA/TPU
graphs): the engine is compiled for batch ``max_seqs`` and a set of sequence-length buckets.

When idle, the engine takes up to ``max_seqs`` waiting requests (padding the rest of the
batch), prefills every prompt padded to the smallest bucket holding the longest one, then runs
decode steps over the full compiled batch, attending over the bucketed context, until its
longest request is done. Each request streams its tokens and finishes at its own length; new
requests wait for the next batch. Buckets default to powers of two from 128 tokens (the
transformers-neuronx convention for context-length and position buckets).
"""

from __future__ import annotations

from bisect import bisect_left

import numpy as np

from ..engine import Engine


def default_buckets(max_ctx: int) -> tuple[int, ...]:
    out = [128]
    while out[-1] < max_ctx:
        out.append(out[-1] * 2)
    return tuple(out)


class StaticEngine(Engine):
    name = "static"

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self._batch: list[int] = []

    def bucket(self, n: int) -> int:
        b = self.buckets
        i = bisect_left(b, n)
        return b[i] if i < len(b) else n

    def start_step(self, t: float) -> float | None:
        if not self.waiting:
            return None
        L, stm, B = self.L, self.stm, self.max_seqs
        batch = [self.waiting.popleft() for _ in range(min(B, len(self.waiting)))]
        self._batch = batch
        prompt = self.bucket(max(L.inp[r] for r in batch))
        t_pre = stm.dense(B * prompt) + stm.head(B) + B * stm.attn_prefill(prompt, 0.0)
        outs = np.asarray([L.out[r] for r in batch])
        steps = int(outs.max()) - 1
        ctx = np.asarray([self.bucket(prompt + j) for j in range(1, steps + 1)], dtype=float)
        dec = {c: stm.decode_step(B, B * c) for c in np.unique(ctx).tolist()}
        step_t = np.asarray([dec[c] for c in ctx.tolist()])
        done_at = t + t_pre + np.concatenate(([0.0], np.cumsum(step_t)))
        for r, o in zip(batch, outs.tolist(), strict=True):
            L.scheduled[r] = t
            L.first_token[r] = t + t_pre
            L.finish[r] = float(done_at[o - 1])
            L.gen[r] = o
        dur = float(done_at[-1] - t)
        used = -(-B * self.bucket(prompt + steps) // self.bs)
        self.blocks_free = self.blocks_total - min(used, self.blocks_total)
        useful = sum(L.inp[r] for r in batch) + int(outs.sum()) - len(batch)
        self.record(t, dur, len(batch), useful, "static batch")  # the prefill step
        active = (outs[None, :] - 1 > np.arange(steps)[:, None]).sum(axis=1)
        hist = self.batch_hist  # requests still generating, per step
        for b, c in zip(*np.unique(active, return_counts=True), strict=True):
            hist[int(b)] = hist.get(int(b), 0) + int(c)
        self.steps += steps
        return dur

    def finish_step(self, t: float) -> None:
        L = self.L
        for r in self._batch:
            L.done += 1
            self.n_assigned -= 1
            self.load_tokens -= L.inp[r] + L.out[r]
            if L.stats is not None:
                L.retire(r)
        self.blocks_free = self.blocks_total
        self._batch = []
