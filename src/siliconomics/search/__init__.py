"""Search over configurations: best deployment per chip, chip comparison."""
