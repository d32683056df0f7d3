"""The S3 fixtures (``s3_endpoint``, ``s3``: moto in server mode on loopback) live in tests/conftest.py:
the anatomy tests read TotalSegmentator SEGs from the same server."""
