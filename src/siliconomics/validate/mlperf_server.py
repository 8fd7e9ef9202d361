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

Input lengths. The same summaries give each sample's prompt length; ``INPUT_QUANTILES`` holds
their 100 quantile midpoints (``scripts/mlperf_length_quantiles.py``), drawn independently of the
output length (the pairing is not modelled). A prompt's length matters beyond its mean where
prompts are prefilled whole on one of several attention-DP ranks: the step waits for the
longest (DeepSeek-R1's prompts run from 52 to 3,140 tokens around a mean of 804).

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

# 100 quantile midpoints of the reference prompt lengths (tokens), see the module docstring.
INPUT_QUANTILES: dict[str, tuple[tuple[int, ...], str]] = {
    "deepseek-r1-mlperf": (
        (67, 78, 85, 90, 97, 102, 107, 112, 117, 122, 126, 132, 138, 144, 151, 160, 170, 183,
         198, 216, 256, 323, 367, 408, 452, 511, 566, 638, 706, 739, 779, 810, 830, 837, 844,
         848, 851, 855, 858, 862, 867, 871, 875, 878, 882, 885, 888, 891, 896, 900, 903, 908,
         911, 914, 920, 924, 930, 936, 942, 948, 954, 962, 968, 978, 985, 995, 1005, 1015, 1024,
         1032, 1042, 1051, 1062, 1073, 1082, 1094, 1103, 1114, 1125, 1136, 1145, 1157, 1170,
         1185, 1202, 1225, 1256, 1268, 1273, 1279, 1282, 1288, 1295, 1300, 1308, 1315, 1327,
         1346, 1390, 1480),
        f"{_PSAP}@7cd1065d:mlperf-data/summaries/deepseek-r1.csv (4,388 samples, mean 803.79, "
        "range 52-3,140)",
    ),
    "openorca-mlperf": (
        (53, 61, 65, 69, 72, 75, 77, 80, 82, 84, 86, 88, 90, 92, 93, 95, 96, 98, 100, 101, 103,
         104, 106, 107, 109, 110, 111, 113, 114, 116, 117, 119, 120, 122, 123, 125, 126, 128,
         129, 131, 133, 134, 136, 138, 140, 142, 144, 146, 149, 151, 154, 156, 159, 162, 165,
         169, 172, 176, 180, 184, 188, 192, 197, 201, 205, 209, 214, 219, 224, 230, 235, 242,
         248, 255, 263, 270, 278, 287, 296, 306, 317, 330, 346, 363, 380, 401, 424, 451, 476,
         506, 531, 552, 572, 589, 606, 623, 641, 666, 728, 878),
        f"{_PSAP}@7cd1065d:mlperf-data/summaries/llama2-70b-99.csv (24,576 samples, mean 222.33, "
        "range 48-1,021)",
    ),
    "mixtral-mlperf": (
        (48, 60, 69, 77, 82, 88, 94, 99, 104, 109, 113, 117, 121, 125, 128, 131, 134, 137, 139,
         142, 144, 147, 149, 151, 153, 156, 158, 161, 164, 167, 170, 173, 177, 180, 184, 188,
         192, 196, 200, 204, 209, 214, 220, 226, 233, 240, 248, 256, 265, 276, 289, 304, 319,
         341, 366, 400, 464, 530, 596, 632, 636, 638, 641, 642, 644, 646, 648, 649, 650, 652,
         653, 654, 656, 658, 659, 661, 662, 664, 666, 667, 669, 671, 673, 676, 678, 680, 684,
         688, 692, 698, 705, 715, 743, 897, 971, 1046, 1148, 1280, 1441, 1754),
        f"{_PSAP}@67033bae:mlperf-data/summaries/mixtral-8x7b.csv (15,000 samples, mean 427.39, "
        "range 35-1,948)",
    ),
    "llama3.1-405b-mlperf": (
        (1205, 1802, 2216, 2470, 2705, 2861, 3043, 3243, 3416, 3578, 3741, 3898, 4048, 4178,
         4314, 4445, 4597, 4745, 4893, 5032, 5205, 5392, 5558, 5728, 5916, 6079, 6259, 6448,
         6691, 6887, 7110, 7292, 7471, 7673, 7852, 8025, 8163, 8349, 8593, 8672, 8913, 9060,
         9202, 9244, 9364, 9550, 9725, 9834, 9870, 9989, 10138, 10224, 10419, 10442, 10461,
         10501, 10707, 10762, 10805, 11017, 11051, 11068, 11089, 11196, 11366, 11382, 11528,
         11658, 11682, 11703, 11791, 11971, 11986, 12201, 12273, 12293, 12328, 12551, 12597,
         12619, 12859, 12899, 12929, 13167, 13189, 13466, 13514, 13745, 13889, 14080, 14346,
         14641, 14890, 15207, 15551, 16075, 16793, 17515, 18443, 19494),
        f"{_PSAP}@67033bae:mlperf-data/summaries/llama3-1-405b.csv (8,313 samples, mean 9,428.64, "
        "range 476-19,988)",
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
