"""Physics that must hold for any configuration (hypothesis property tests)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from siliconomics.catalog.registry import get_chip, get_model
from siliconomics.inference.forward import forward_cost
from siliconomics.parallel.memory import weight_bytes_per_chip
from siliconomics.parallel.plan import InferencePlan
from siliconomics.resolve import device

MODELS = st.sampled_from(["llama-2-7b", "llama-3.1-70b", "mixtral-8x7b", "gpt-j-6b"])
CHIPS = st.sampled_from(["h100-sxm", "a100-sxm-80gb", "tpu-v5e", "trn2", "mi300x", "gaudi3"])


@settings(max_examples=60, deadline=None)
@given(
    MODELS,
    CHIPS,
    st.integers(1, 256),
    st.integers(1, 4096),
    st.integers(0, 8192),
    st.floats(1.1, 4.0),
)
def test_more_bandwidth_is_never_slower(model, chip, batch, seq, ctx, factor):
    m, c = get_model(model), get_chip(chip)
    mem = c.memory
    faster = c.model_copy(
        update={
            "memory": mem.model_copy(
                update={
                    "bytes_per_s": mem.bytes_per_s.model_copy(
                        update={"value": mem.bytes_per_s.value * factor}
                    )
                }
            )
        }
    )
    plan = InferencePlan(tp=8 if m.n_layers >= 60 else 1)
    slow = forward_cost(m, device(c), plan, batch, seq, ctx).time
    fast = forward_cost(m, device(faster), plan, batch, seq, ctx).time
    assert float(fast) <= float(slow) * (1 + 1e-12)


@settings(max_examples=40, deadline=None)
@given(MODELS, st.sampled_from([1, 2, 4, 8]), st.sampled_from([1, 2, 4, 8]))
def test_more_tp_never_raises_weight_memory_per_chip(model, tp1, tp2):
    m = get_model(model)
    lo, hi = sorted((tp1, tp2))
    assert weight_bytes_per_chip(m, InferencePlan(tp=hi)) <= weight_bytes_per_chip(
        m, InferencePlan(tp=lo)
    )


@settings(max_examples=40, deadline=None)
@given(MODELS, CHIPS, st.integers(1, 512), st.integers(0, 8192), st.integers(1, 4000))
def test_longer_context_is_never_faster(model, chip, batch, ctx, extra):
    m, c = get_model(model), get_chip(chip)
    dev = device(c)
    plan = InferencePlan(tp=8 if m.n_layers >= 60 else 1)
    t1 = forward_cost(m, dev, plan, batch, 1, ctx).time
    t2 = forward_cost(m, dev, plan, batch, 1, ctx + extra).time
    assert float(t2) >= float(t1)
