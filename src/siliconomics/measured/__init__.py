"""Measured results: reading rows in the normalized schema (``../shared/validation/SCHEMA.md``).

Predicting them is :mod:`siliconomics.validate`; fitting efficiency factors on them is
:mod:`siliconomics.calibrate`.
"""

from .rows import MeasuredRow, read_measured, read_models_csv

__all__ = ["MeasuredRow", "read_measured", "read_models_csv"]
