"""The ``classical`` model: thresholds and morphology, no weights (the default model)."""
