"""Development tools: training, benchmarks' baselines, evaluation and figure scripts.

They stand outside the layer order (``deepcac2.layers``): they may import any stage and the
synth package, and nothing on the run path imports them.
"""
