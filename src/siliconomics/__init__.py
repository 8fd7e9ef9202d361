"""siliconomics: speed, cost and energy of LLM training and serving on GPUs and AI ASICs.

The Python API (:mod:`siliconomics.api`, see docs/API.md)::

    import siliconomics as si
    r = si.estimate("llama-3.1-8b", "h100-sxm", batch=8)
    r.ttft_s, r.to_dict(), r.to_pandas()

``estimate``, ``compare``, ``train``, ``simulate``, ``plan``, ``tco`` and ``validate`` take ids,
files or objects and return typed results with ``to_dict()`` (the ``--json`` output) and
``to_pandas()``. The core layers (``units`` .. ``validate``) are pure: no printing, no files,
no id look-ups; the edges (``api``, ``cli``, ``report``, ``resolve``) do that (docs/ARCHITECTURE.md).
"""

__version__ = "0.1.0"

# Bound eagerly: 'validate' is also a subpackage, so a lazy attribute would lose to it.
from .api import Result, compare, estimate, plan, simulate, tco, train, validate

__all__ = [
    "Result",
    "__version__",
    "compare",
    "estimate",
    "plan",
    "simulate",
    "tco",
    "train",
    "validate",
]
