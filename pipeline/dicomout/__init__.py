"""What every DICOM object we write shares, below the SEG and SR writers.

``identity``: manufacturer, content creator, SeriesNumber and SeriesDescription schemes and
the algorithm name; ``geometry``: the loader's geometry as DICOM attributes (never copied
from the source headers); ``reproducible``: fixed dates, atomic writes. Deterministic UIDs
are ``deepcac2.pipeline.uids``. ``seg``, ``sr`` and ``convert`` import from here, never the
other way round.
"""
