"""Calibration: fit efficiency profiles to measured timings."""
