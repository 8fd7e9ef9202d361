"""What an MLPerf Server / Interactive run looks like beyond its row: the datasets' output-length
distributions and the engine settings of the published harnesses.

Output lengths. MLPerf publishes a mean output length per benchmark; the datasets' reference
outputs have a wide spread (DeepSeek-R1's reasoning answers run from 200 to the 20,000-token cap,
coefficient of variation 1.25). Under continuous batching the sequences in flight are a
length-biased sample: a request that decodes ``L`` tokens stays ``L`` steps, so the mean
generated context in flight is ``E[L^2] / (2 E[L])`` rather than ``E[L] / 2`` (4,350 instead of
1,943 tokens for DeepSeek-R1), which raises the attention and KV cost of each decode step, and
the TPOT of a short answer is a mean over few steps, so its p99 is wider. The tables below are
the 100 quantile midpoints (0.5%, 1.5%, ..., 99.5%) of each dataset's per-sample reference
output length, from the token counts of the MLCommons dataset files as summarised by
openshift-psap/performance-dashboard@7cd1065d (deepseek-r1.csv, llama2-70b-99.csv) and
@67033bae (mixtral-8x7b.csv, llama3-1-405b.csv), ``mlperf-data/summaries/``; DeepSeek-R1's
are capped at the benchmark's 20,000 output tokens (``max_seq_len: 3140 + 20000`` in every
v5.1 harness config), which gives a mean of 3,886.2, the MLCommons reference
``tokens_per_sample`` the rows carry. A row's distribution is the table scaled to its stated mean
(so the mean is the row's, the shape the dataset's). Sets without a table keep a fixed mean.

Harness settings. The Server harnesses of MLPerf Inference v5.1 do not run the engine as the
simulator's default (chunked prefill, 8,192 tokens per step, no CUDA-graph padding) does:

* AMD's vLLM harness (``harness_llm``, reused by Dell, GigaComputing, MiTAC, QCT, Vultr and
  ASUSTeK) runs Server with ``enable_chunked_prefill: False`` and ``max_num_batched_tokens``
  32,000 (mixtral-8x7b; Vultr MI300X 30,720) or 40,960 (llama2-70b): vLLM's prefill-first
  scheduler, in which a step prefills whole waiting prompts and stalls every running decode,
  the simulator's ``continuous`` scheduler, with multi-step scheduling (``num_scheduler_steps``
  8-10: a prompt waits for the end of the running decode round). The Interactive config of MI325X turns chunked
  prefill on (43,008 tokens).
* NVIDIA's DeepSeek-R1 harness (TensorRT-LLM PyTorch executor, attention DP over 8 ranks, reused
  by every B200/GB200/GB300 submitter) runs Server with ``max_num_tokens`` 3,456 per rank and
  CUDA graphs captured at 128, 256, 384 and 512 sequences per rank with padding (GB200 NVL72:
  1, 2, 4, ..., 512; CoreWeave GB300 NVL8: from 32), ``enable_chunked_context: False`` (all but
  GigaComputing). Decode steps of fewer sequences replay the next larger graph.

Each entry names the config files it was read from (mlcommons/inference_results_v5.1@965182b0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..measured.rows import MeasuredRow

DS_R1_MAX_OUTPUT = 20000

_PSAP = "openshift-psap/performance-dashboard"
# 100 quantile midpoints of the reference output lengths (tokens), see the module docstring.
OUTPUT_QUANTILES: dict[str, tuple[tuple[int, ...], str]] = {
    "deepseek-r1-mlperf": (
        (300, 375, 424, 462, 493, 515, 537, 566, 589, 615, 635, 658, 681, 703, 724, 748, 779,
         801, 826, 855, 880, 909, 927, 954, 984, 1015, 1051, 1086, 1112, 1142, 1177, 1215, 1266,
         1302, 1344, 1378, 1418, 1464, 1522, 1569, 1622, 1670, 1721, 1780, 1852, 1915, 1974,
         2026, 2091, 2163, 2232, 2318, 2400, 2476, 2557, 2646, 2722, 2818, 2886, 2988, 3085,
         3169, 3281, 3393, 3508, 3627, 3760, 3888, 4038, 4158, 4292, 4407, 4526, 4681, 4837,
         5004, 5166, 5367, 5546, 5828, 6073, 6338, 6670, 6990, 7215, 7581, 7931, 8491, 8778,
         9285, 9907, 10641, 11357, 12244, 13396, 14412, 16432, 18252, 20000, 20000),
        f"{_PSAP}@7cd1065d:mlperf-data/summaries/deepseek-r1.csv (4,388 samples, "
        f"tok_ref_output_len capped at {DS_R1_MAX_OUTPUT:,})",
    ),
    "mixtral-mlperf": (
        (22, 27, 30, 32, 34, 37, 39, 41, 43, 46, 47, 50, 52, 54, 56, 58, 59, 61, 63, 65, 67, 69,
         70, 72, 73, 75, 76, 78, 80, 81, 83, 84, 86, 87, 89, 90, 92, 93, 95, 96, 98, 99, 101,
         102, 104, 106, 107, 109, 111, 112, 114, 116, 118, 119, 121, 123, 125, 127, 129, 131,
         133, 136, 138, 141, 143, 146, 149, 152, 155, 158, 161, 165, 169, 173, 177, 181, 186,
         189, 194, 199, 204, 209, 215, 224, 231, 239, 246, 255, 264, 273, 285, 297, 312, 328,
         352, 375, 403, 450, 529, 673),
        f"{_PSAP}@67033bae:mlperf-data/summaries/mixtral-8x7b.csv (15,000 samples)",
    ),
    "openorca-mlperf": (
        (3, 5, 7, 10, 13, 16, 19, 22, 25, 29, 32, 36, 40, 43, 47, 51, 54, 58, 61, 65, 68, 72, 75,
         79, 82, 85, 89, 92, 96, 100, 103, 108, 112, 116, 120, 125, 129, 134, 139, 144, 149, 153,
         157, 162, 167, 171, 175, 179, 183, 188, 192, 196, 200, 204, 208, 212, 216, 220, 224,
         229, 233, 237, 242, 246, 251, 255, 260, 265, 270, 274, 279, 284, 289, 295, 300, 306,
         311, 318, 324, 332, 341, 349, 358, 368, 380, 390, 401, 413, 426, 441, 457, 477, 499,
         521, 549, 579, 619, 669, 730, 843),
        f"{_PSAP}@7cd1065d:mlperf-data/summaries/llama2-70b-99.csv (24,576 samples)",
    ),
    "llama3.1-405b-mlperf": (
        (150, 197, 204, 207, 209, 210, 212, 213, 214, 216, 217, 220, 223, 367, 392, 404, 413,
         417, 420, 422, 424, 426, 429, 431, 434, 440, 496, 544, 573, 591, 608, 621, 631, 640,
         650, 658, 668, 675, 681, 688, 695, 701, 707, 713, 720, 726, 733, 739, 745, 750, 755,
         760, 766, 771, 775, 779, 784, 788, 792, 797, 802, 807, 812, 817, 822, 826, 830, 834,
         837, 840, 842, 845, 848, 851, 854, 857, 860, 865, 870, 877, 884, 892, 899, 907, 917,
         924, 933, 944, 956, 967, 980, 995, 1009, 1021, 1041, 1057, 1078, 1105, 1151, 1220),
        f"{_PSAP}@67033bae:mlperf-data/summaries/llama3-1-405b.csv (8,313 samples)",
    ),
}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Harness:
    """Engine settings of a published Server/Interactive harness config."""

    scheduler: str
    """``continuous`` (prefill-first, whole prompts: chunked prefill off in vLLM) or
    ``chunked`` (decode-first mixed steps)"""
    tokens_per_rank: int
    """token budget of one step per attention rank (vLLM ``max_num_batched_tokens``,
    TensorRT-LLM ``max_num_tokens``)"""
    graph_sizes: tuple[int, ...] = ()
    """CUDA-graph batch sizes per attention rank, padded up to (empty: none)"""
    multi_step: int = 1
    """vLLM V0 ``num_scheduler_steps``: decode steps per scheduler call"""
    adp_balance: tuple[int, int] | None = None
    """TensorRT-LLM attention-DP balancing (``adp_balancing_timeout_iters``,
    ``adp_balancing_batching_wait_iters``)"""
    source: str


_V51 = "mlcommons/inference_results_v5.1@965182b0 closed/"
_AMD = _V51 + "AMD/code/{b}/harness_llm/models/{b}/{f}.yaml (same in every partner's copy)"
_NV = _V51 + "{s}/configs/{c}/Server/deepseek-r1.py"
_NV_GRAPHS = (128, 256, 384, 512)


@dataclass(frozen=True, kw_only=True)
class _Match:
    model: str
    scenario: str
    """the MLPerf scenario (the row id's suffix): Server or Interactive"""
    software: str
    """regular expression on the row's software"""
    chips: tuple[str, ...] = ()
    source: str = ""
    """regular expression on the row's source path (empty: any)"""


_VLLM = r"^vLLM 0\.(6\.5\.dev964\+mlperf50|9\.0\.2\.dev)"
_TRT = r"^TensorRT "
HARNESSES: tuple[tuple[_Match, Harness], ...] = (
    (
        _Match(model="mixtral-8x7b", scenario="Server", software=_VLLM, chips=("mi300x",)),
        Harness(
            scheduler="continuous",
            tokens_per_rank=32000,
            multi_step=8,
            source=_AMD.format(b="mixtral-8x7b", f="server_mi300x"),
        ),
    ),
    (
        _Match(model="mixtral-8x7b", scenario="Server", software=_VLLM, chips=("mi325x",)),
        Harness(
            scheduler="continuous",
            tokens_per_rank=32000,
            multi_step=10,
            source=_AMD.format(b="mixtral-8x7b", f="server_mi325x") + "; Vultr's: 7 steps",
        ),
    ),
    (
        _Match(model="llama-2-70b", scenario="Server", software=_VLLM, chips=("mi300x", "mi325x")),
        Harness(
            scheduler="continuous",
            tokens_per_rank=40960,
            multi_step=9,
            source=_AMD.format(b="llama2-70b", f="server_mi300x, server_mi325x"),
        ),
    ),
    (
        _Match(model="llama-2-70b", scenario="Interactive", software=_VLLM, chips=("mi300x",)),
        Harness(
            scheduler="continuous",
            tokens_per_rank=40960,
            multi_step=8,
            source=_AMD.format(b="llama2-70b", f="interactive_mi300x"),
        ),
    ),
    (
        _Match(model="llama-2-70b", scenario="Interactive", software=_VLLM, chips=("mi325x",)),
        Harness(
            scheduler="chunked",
            tokens_per_rank=43008,
            source=_AMD.format(b="llama2-70b", f="interactive_mi325x"),
        ),
    ),
    (
        _Match(model="deepseek-r1", scenario="Server", software=_TRT, chips=("gb200",)),
        Harness(
            scheduler="chunked",
            tokens_per_rank=3456,
            graph_sizes=(1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512),
            adp_balance=(9, 3),
            source=_NV.format(s="NVIDIA", c="GB200-NVL72_GB200-186GB_aarch64x72"),
        ),
    ),
    (
        _Match(
            model="deepseek-r1",
            scenario="Server",
            software=_TRT,
            chips=("gb300",),
            source="closed/CoreWeave/",
        ),
        Harness(
            scheduler="chunked",
            tokens_per_rank=3456,
            graph_sizes=(32, 64, 128, 256, 384, 512),
            adp_balance=(6, 2),
            source=_NV.format(s="CoreWeave", c="GB300-NVL8-CoreWeave"),
        ),
    ),
    (
        _Match(model="deepseek-r1", scenario="Server", software=_TRT, chips=("gb300",)),
        Harness(
            scheduler="chunked",
            tokens_per_rank=3456,
            graph_sizes=_NV_GRAPHS,
            adp_balance=(6, 2),
            source=_NV.format(s="NVIDIA", c="GB300-NVL72_GB300-288GB_aarch64x72_TRT"),
        ),
    ),
    (
        _Match(model="deepseek-r1", scenario="Server", software=_TRT, chips=("b200",)),
        Harness(
            scheduler="chunked",
            tokens_per_rank=3456,
            graph_sizes=_NV_GRAPHS,
            adp_balance=(9, 3),
            source=_NV.format(s="NVIDIA", c="B200-SXM-180GBx8")
            + " (the same in every B200 partner's copy but balancing (6, 2) for Dell XE9680L, "
            "Oracle and Supermicro)",
        ),
    ),
)


def mlperf_scenario(row: MeasuredRow) -> str:
    """The MLPerf scenario of a v5.1 corpus row (its id's last part), '' for other rows."""
    tail = row.id.rsplit("-", 1)[-1]
    return tail if tail in ("Offline", "Server", "Interactive") else ""


def harness(row: MeasuredRow) -> Harness | None:
    """The published harness settings behind a Server/Interactive row (None: unknown)."""
    if "inference_results_v5.1" not in row.source:
        return None
    scen = mlperf_scenario(row)
    sw = row.software or ""
    for m, h in HARNESSES:
        if (
            m.model == row.model
            and m.scenario == scen
            and re.search(m.software, sw)
            and (not m.chips or row.chip in m.chips)
            and (not m.source or m.source in row.source)
        ):
            return h
    return None
