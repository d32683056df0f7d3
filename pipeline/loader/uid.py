"""UID validation: a UID is checked before it is ever used in a path or a query.

The rule lives in ``deepcac2.pipeline.uids`` (one rule for loader, sources and writers);
this module keeps the loader's import path.
"""

from __future__ import annotations

from deepcac2.pipeline.uids import MAX_UID_LENGTH, validate_uid

__all__ = ["MAX_UID_LENGTH", "validate_uid"]
