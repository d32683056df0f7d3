"""Stages: cohort, sources, DICOM loading, models, inference, scoring, conversion, orchestration.

Stage code is plain functions over the dataclasses in :mod:`deepcac2.pipeline.stage_values`.
Only :mod:`deepcac2.pipeline.orchestrate` imports Dask. The stages follow the layer order of
:mod:`deepcac2.layers`; ``synth`` and ``dev`` stand outside it, and no stage imports them.
"""
