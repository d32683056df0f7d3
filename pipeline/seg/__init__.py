"""DICOM SEG for heart, coronary calcium and per-vessel calcium (built with highdicom).

``sop.build_seg`` makes the object, ``sop.write_seg`` writes it; ``content`` holds the
segment layout and codes; ``enum`` the encodings.
"""
