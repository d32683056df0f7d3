"""Running a cohort on a Dask cluster. The only package in the toolkit that imports Dask.

Entry point: :func:`deepcac2.pipeline.orchestrate.run.run_cohort` (and ``deepcac2 run``).
"""
