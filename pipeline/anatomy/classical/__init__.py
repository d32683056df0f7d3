"""The ``classical`` anatomy provider: heart and aorta from thresholds and morphology (covers every series)."""
