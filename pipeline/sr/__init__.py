"""DICOM SR TID 1500 measurement report of one series (highdicom Comprehensive 3D SR).

``content.measurement_groups`` turns scores into plain group specs (also the source of
the ``measurements`` table, so SR and table cannot disagree); ``sop.build_sr`` makes
the SR from them; ``sop.write_sr`` writes it.
"""
