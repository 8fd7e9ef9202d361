"""LatentMoE (NVIDIA Nemotron 3 Super / Ultra): the loader, parameters, the routed path at the
latent width (permute, grouped GEMMs, unpermute, all-to-all), the two replicated projections,
training and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from siliconomics import resolve
from siliconomics.catalog import registry
from siliconomics.catalog.hf import load_hf_config
from siliconomics.cli import app
from siliconomics.errors import SiliconomicsError
from siliconomics.inference.forward import forward_cost
from siliconomics.parallel.memory import active_params, param_counts, total_params
from siliconomics.parallel.plan import InferencePlan
from siliconomics.training.estimate import estimate_training
from siliconomics.training.memory import moe_permuted_input_bytes
from siliconomics.training.plan import TrainPlan, grid_of

# nvidia/NVIDIA-Nemotron-3-Super-120B-A12B config.json (the keys the loader reads), as vendored
# in xiaowanCN/aiconfigurator @50883569
SUPER: dict[str, Any] = {
    "model_type": "nemotron_h", "hidden_size": 4096, "num_hidden_layers": 88,
    "hybrid_override_pattern": "MEMEMEM*EMEMEMEM*EMEMEMEM*EMEMEMEMEM*EMEMEMEMEM*EMEMEMEMEM*"
    "EMEMEMEMEM*EMEMEMEM*EMEMEMEME",
    "num_attention_heads": 32, "num_key_value_heads": 2, "head_dim": 128,
    "intermediate_size": 2688, "moe_intermediate_size": 2688, "moe_latent_size": 1024,
    "moe_shared_expert_intermediate_size": 5376, "n_shared_experts": 1,
    "n_routed_experts": 512, "num_experts_per_tok": 22, "mamba_head_dim": 64,
    "mamba_num_heads": 128, "n_groups": 8, "ssm_state_size": 128, "conv_kernel": 4,
    "chunk_size": 128, "mamba_ssm_cache_dtype": "float32", "mlp_hidden_act": "relu2",
    "num_nextn_predict_layers": 1, "vocab_size": 131072, "tie_word_embeddings": False,
    "max_position_embeddings": 262144, "dtype": "bfloat16",
}  # fmt: skip

BLOCK_NAMES = {"M": "mamba", "*": "attention", "-": "mlp", "E": "moe"}


def _write(folder: Path, cfg: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return path


def _super() -> Any:
    return registry.get_model("nemotron-3-super-120b-a12b")


def _without_latent(m: Any, width: int) -> Any:
    """The same model with plain experts of input width ``width`` (for comparisons)."""
    moe = m.moe.model_copy(update={"latent_dim": None})
    return m.model_copy(update={"moe": moe, "d_model": width})


def test_loader_reads_the_latent_and_the_preset_matches(tmp_path: Path) -> None:
    m = load_hf_config(_write(tmp_path / "super", SUPER))
    assert m.moe is not None and m.moe.latent_dim == 1024
    assert (m.n_layers, m.ffn_layers, m.n_linear_layers, m.n_mtp_layers) == (48, 40, 40, 1)
    assert m.moe.n_shared_experts == 2  # 5,376 = two expert widths
    assert m.expert_width == 1024
    preset = _super()
    assert (preset.moe, preset.linear_attention, preset.ffn_layers) == (
        m.moe,
        m.linear_attention,
        m.ffn_layers,
    )
    assert total_params(m) == pytest.approx(120.67e9, rel=1e-3)
    assert active_params(m) == pytest.approx(12.77e9, rel=1e-3)


def test_block_list_reads_as_the_pattern(tmp_path: Path) -> None:
    """Nemotron 3 Ultra lists its blocks (``layers_block_type``, ``num_hidden_layers`` null):
    the loader reads the list as the pattern string it spells."""
    listed = {k: v for k, v in SUPER.items() if k != "hybrid_override_pattern"}
    listed["num_hidden_layers"] = None
    listed["layers_block_type"] = [BLOCK_NAMES[b] for b in SUPER["hybrid_override_pattern"]]
    a = load_hf_config(_write(tmp_path / "pattern", SUPER))
    b = load_hf_config(_write(tmp_path / "listed", listed))
    assert b.model_copy(update={"source": a.source, "id": a.id}) == a
    bad = {**listed, "layers_block_type": ["mamba", "moe", "gdn"]}
    with pytest.raises(SiliconomicsError, match="'layers_block_type' has 'gdn'"):
        load_hf_config(_write(tmp_path / "bad", bad))


def test_parameters_count_latent_experts_and_the_replicated_projections() -> None:
    m = _super()
    D, lat, fe, E = 4096, 1024, 2688, 512
    per_layer = E * 2 * lat * fe + 2 * D * lat + 2 * D * 2 * fe + D * E
    assert param_counts(m)["ffn_experts"] == 40 * per_layer
    # tp = 4, ep = 4: a quarter of the experts, the shared expert split, the latent whole
    split = (E // 4) * 2 * lat * fe + 2 * D * lat + 2 * D * (2 * fe // 4) + D * E
    assert param_counts(m, tp=4, ep=4)["ffn_experts"] == 40 * split


def test_routed_path_runs_at_the_latent_width() -> None:
    m, dev = _super(), resolve.device("b200")
    plan = InferencePlan(tp=2, ep=2, weight_dtype="fp8", act_dtype="fp8")
    T = 64.0
    ops = {op.name: op for op in forward_cost(m, dev, plan, T, 1.0, 512.0).ops}
    lat, D = 1024, 4096
    # two replicated projections over all T tokens (dp = 1), 40 MoE layers
    assert float(ops["moe_latent_down"].flops) == pytest.approx(40 * 2 * T * lat * D)
    assert float(ops["moe_latent_up"].flops) == pytest.approx(40 * 2 * T * D * lat)
    # grouped GEMMs: rows x (Fe x latent), squared ReLU (one input matrix)
    up, down = float(ops["moe_up"].flops), float(ops["moe_down"].flops)
    assert up == pytest.approx(down)
    rows = up / (40 * 2 * 2688 * lat)
    assert rows > T * 22 / 2  # the busiest rank's imbalance on top of T k / ep
    # permute: read T latent vectors (16-bit), write k copies (FP8)
    assert float(ops["moe_permute"].bytes) == pytest.approx(40 * T * lat * (2 + 22 * 1))
    # the router and the shared expert stay at the hidden size
    assert float(ops["router"].flops) == pytest.approx(40 * 2 * T * D * 512)
    assert float(ops["shared_expert_up"].flops) == pytest.approx(40 * 2 * T * 2 * 2688 / 2 * D)


def test_all_to_all_carries_latent_vectors() -> None:
    """Under attention DP the dispatch and combine move latent-wide tokens: D/latent = 4x
    fewer bytes than plain experts of width D with the same routing."""
    m, dev = _super(), resolve.device("b200")
    plan = InferencePlan(dp=8, ep=8, weight_dtype="fp8", act_dtype="fp8")
    lat = forward_cost(m, dev, plan, 512.0, 1.0, 1000.0)
    plain = forward_cost(_without_latent(m, 4096), dev, plan, 512.0, 1.0, 1000.0)
    a, b = (next(op for op in fc.ops if op.name == "ep_all_to_all") for fc in (lat, plain))
    assert float(a.comm_bytes) == pytest.approx(float(b.comm_bytes) / 4)
    assert float(a.time) < float(b.time)
    names = {op.name for op in plain.ops}
    assert "moe_latent_down" not in names and "moe_latent_up" not in names


def test_latent_projections_cost_less_than_the_width_they_save() -> None:
    """At prefill the latent model's MoE layers are cheaper than the same experts at D: the
    grouped GEMMs shrink by D/latent, the two projections add 4 T D latent FLOPs."""
    m, dev = _super(), resolve.device("h200-sxm")
    plan = InferencePlan(tp=4, ep=4, weight_dtype="fp8", act_dtype="fp8")
    moe_ops = ("moe_up", "moe_down", "moe_latent_down", "moe_latent_up", "moe_permute")
    lat = forward_cost(m, dev, plan, 8.0, 2048.0)
    plain = forward_cost(_without_latent(m, 4096), dev, plan, 8.0, 2048.0)

    def moe_time(fc: Any) -> float:
        return sum(float(op.time) for op in fc.ops if op.name in moe_ops)

    assert moe_time(lat) < 0.5 * moe_time(plain)


def test_training_prices_the_latent_experts() -> None:
    m = _super()
    plan = TrainPlan(tp=4, ep=8, dp=8, micro_batch=1, dtype="fp8")
    r = estimate_training(m, resolve.device("b200"), plan, seq_len=8192, global_batch_seqs=64)
    assert r.step_time_s > 0 and 0.0 < r.mfu < 0.6
    plain = _without_latent(m, 4096)
    # the same experts at the hidden width: 4x the expert weights and FLOPs, a slower step
    r_plain = estimate_training(
        plain, resolve.device("b200"), plan, seq_len=8192, global_batch_seqs=64, check_memory=False
    )
    assert r_plain.step_time_s > 1.5 * r.step_time_s
    # the expert inputs the wgrad keeps: (k + 1) latent rows per token, /tp
    g = grid_of([plan])
    saved = float(np.asarray(moe_permuted_input_bytes(m, g, 1.0)).ravel()[0])
    assert saved == pytest.approx((22 + 1) * 1024 / 4)


def test_cli_estimate_names_the_latent() -> None:
    res = CliRunner().invoke(
        app,
        [
            "estimate", "--model", "nemotron-3-super-120b-a12b", "--chip", "b200",
            "--tp", "2", "--ep", "2", "--weights-dtype", "fp4", "--act-dtype", "fp4",
            "--batch", "32", "--input", "8192", "--output", "1024",
            "--mode", "max-throughput",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "LatentMoE: routed tokens are projected 4,096 -> 1,024" in out
    assert "Mamba-2: 40 of 48 layers are Mamba-2 mixers" in out
    assert "moe_latent_down" in out
