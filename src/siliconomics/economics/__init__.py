"""Prices, power and energy: $/hour, $ per million tokens, joules per token."""
