"""Provider ``idc-totalsegmentator``: heart and great vessels from IDC's TotalSegmentator SEGs of NLST.

``codes.py`` names the segments by SegmentedPropertyType code; ``ranges.py`` reads byte
ranges of a local file or an S3 object; ``seg.py`` reads a SEG's header and only the
frames of the wanted segments onto the CT grid; ``provider.py`` is the provider.
"""
