"""IDC's TotalSegmentator DICOM SEGs of NLST, read without loading them whole.

``codes.py`` names the segments by SegmentedPropertyType code; ``byte_ranges.py`` reads byte
ranges of a local file or an S3 object; ``seg_reader.py`` reads a SEG's header and only the
frames of the wanted segments onto the CT grid. Below the cohort step (which reads a local
SEG's header to attach it to its CT) and the anatomy provider ``idc-totalsegmentator``
(``anatomy/idc_totalseg.py``, which reads its masks).
"""
