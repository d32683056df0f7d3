"""Synthetic NLST-like chest CT with exact ground truth (``deepcac2 synth``).

* ``phantom``: ``ChestSpec`` -> ``build_chest`` -> ``Phantom`` (in memory, no DICOM);
* ``truth``: expected scores per convention, analytic;
* ``dicom_writer``: one NLST-like CT series per phantom;
* ``qrm``: a QRM-like calcium phantom; ``defects``: the bad-input corpus;
* ``cohort``: ``write_cohort("demo" | "qrm" | "bad", out_dir)``.

See ``docs/synth.md``.
"""
