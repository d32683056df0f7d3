"""Agatston, volume, mass and lesion scores under named conventions, and risk categories.

Public API (see ``docs/conventions.md``):

* ``engine.score_series(hu, geometry, cac_mask, *, convention, kvp, slice_thickness, vessels, mass_factor)``
  and ``engine.score_ct(ct, cac_mask, *, convention, vessels, mass_factor)`` -> ``stage_values.Scores``;
* the conventions (``deepcac2.pipeline.conventions``: ``CONVENTIONS``, ``get_convention``, ``kvp_bands``) and
  the risk bands (``deepcac2.pipeline.risk_categories``: ``categorize``, ``category``, ``labels``, ``SCHEMES``)
  live in the core layer, below the table schemas whose columns follow them;
* ``evaluate.compare`` -> ``EvaluationResult``, ``evaluate.write_report``;
* ``masks.read_mask(path, ct)`` -> ``GivenMask`` (SEG, NRRD, NIfTI onto the CT grid).
"""
