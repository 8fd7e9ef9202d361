"""siliconomics: speed, cost and energy of LLM training and serving on GPUs and AI ASICs.

The core layers (``units`` .. ``plan``) are pure: no printing, no clock, no network.
The edges (``report``, ``cli``) render results.
"""

__version__ = "0.1.0"
