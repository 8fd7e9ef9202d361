"""Chunked prefill with decode-first mixed steps (Sarathi-Serve, Agrawal et al., OSDI 2024;
vLLM V1's scheduler; TensorRT-LLM in-flight batching with chunked context).

Every step runs one token of each running decode sequence, then fills what is left of the
token budget ``max_batched_tokens`` with prompt chunks: first the prompts already being
prefilled (in arrival order), then new requests while the sequence limit and KV blocks allow
(a prompt's blocks are reserved when it is admitted). Prefill never stalls decoding, so TPOT
stays flat under load at the cost of slower prompts.
"""

from __future__ import annotations

from collections import deque

from ..engine import Engine


class ChunkedEngine(Engine):
    name = "chunked"

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.partial: deque[list[int]] = deque()  # [rid, done, prompt]
        self._chunks: list[tuple[list[int], int]] = []
        self._attn_memo: dict[tuple[int, int], float] = {}  # prefill chunk (s, c) -> attention s

    def n_prefilling(self) -> int:
        return len(self.partial)

    def _admit(self, t: float, budget: int) -> int:
        L, bs = self.L, self.bs
        while budget > 0 and self.waiting and self.n_dec + len(self.partial) < self.max_seqs:
            rid = self.waiting[0]
            p = L.inp[rid] + L.gen[rid]
            need = -(-p // bs)
            idle = not self.partial and not self.n_dec
            if need > self.blocks_free - (0 if idle else self.watermark):
                break
            self.waiting.popleft()
            self.blocks_free -= need
            item = [rid, 0, p]
            self.partial.append(item)
            take = min(p, budget)
            self._chunks.append((item, take))
            budget -= take
            if L.scheduled[rid] != L.scheduled[rid]:
                L.scheduled[rid] = t
        return budget

    def admission_blocked(self) -> bool:
        """No waiting request can start its prompt this step (none waits, or the first one
        lacks a sequence slot, token budget or KV blocks; requests still in ``ready`` after
        :meth:`admit_ready` are blocked the same way). While the decode set runs without a
        finish this stays true: its size is constant and free blocks only shrink, so a run
        of pure decode steps is what step-by-step scheduling would do."""
        if not self.waiting:
            return True
        if self.n_dec >= self.max_seqs or self.n_dec * self.verify >= self.max_tokens:
            return True
        p = self.L.inp[self.waiting[0]] + self.L.gen[self.waiting[0]]
        return -(-p // self.bs) > self.blocks_free - self.watermark

    def start_step(self, t: float) -> float | None:
        if self.ready:
            self.admit_ready()
        if self.n_dec and not self.partial and self.admission_blocked():
            # Pure decode (the common case): a multi-step run, or one step without the
            # chunk bookkeeping.
            dur = self.decode_run(t)
            if dur is not None:
                return dur
            self.reserve_decode_blocks()
            reserved = True
            if self.n_dec and not self.waiting:  # (a preemption puts a request in waiting)
                self._chunks = []
                dur = self.stm.decode_step(self.n_dec, self.ctx_sum)
                self.record(t, dur, self.n_dec, self.dec_tokens(), "decode")
                return dur
        else:
            reserved = False
        if self.n_dec and not reserved:
            self.reserve_decode_blocks()
        budget = self.max_tokens - self.n_dec * self.verify  # speculation verifies K + 1
        self._chunks = chunks = []
        for item in self.partial:
            if budget <= 0:
                break
            take = min(item[2] - item[1], budget)
            chunks.append((item, take))
            budget -= take
        self._admit(t, budget)
        if not chunks:
            if not self.n_dec:
                return None
            # generation only (requests wait, blocked): the decode step's own cost, as in a
            # decode run (CUDA-graph padding applies)
            dur = self.stm.decode_step(self.n_dec, self.ctx_sum)
            self.record(t, dur, self.n_dec, self.dec_tokens(), "decode")
            return dur
        pre = sum(take for _, take in chunks)
        sampled = self.n_dec + sum(item[1] + take == item[2] for item, take in chunks)
        parts = [(take, item[1]) for item, take in chunks]
        memo = self._attn_memo
        if len(memo) > 1 << 16:
            memo.clear()
        raw = self.stm.mixed_ranks(self.n_dec, self.ctx_sum, parts, sampled, memo=memo)
        dur = self.stm.with_host(raw, self.n_dec + len(chunks))
        tokens = self.dec_tokens() + pre
        self.load_tokens -= pre
        self.record(t, dur, self.n_dec + len(chunks), tokens, "mixed" if pre else "decode")
        return dur

    def finish_step(self, t: float) -> None:
        if self.run_steps:
            self.end_decode_run(t)
            return
        self.end_decode_step(t)
        for item, take in self._chunks:
            item[1] += take
            if item[1] == item[2]:
                # completions are a prefix of the queue: the budget is handed out in order
                assert self.partial[0] is item
                self.partial.popleft()
                self.prefilled(item[0], item[2], t)
        self._chunks = []
