"""The values the loader checks, converted once per distinct raw value, not once per slice.

pydicom turns a raw element into a value in 20-40 us. A CT series repeats most of the
attributes the loader reads (orientation, pixel spacing, the pixel module, rescale,
modality, image type, series UID) byte for byte on every slice, and converting them
again on each slice was the largest part of the loader's cost over a plain
read-and-stack. So each slice gets a plain ``Values`` dict: keyword -> value, as pydicom
converted it, shared between slices whose raw bytes, VR and encoding are the same. The
loader's checks read these dicts; the kept headers convert lazily for whoever reads
them later. The values are shared between slices: treat them as read-only.
"""

from __future__ import annotations

import functools
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

#: keyword -> value for the attributes present in one slice
Values = dict[str, Any]

_CHARSET = BaseTag(0x00080005)


@functools.cache
def _tag(keyword: str) -> tuple[BaseTag, bool]:
    """The tag, and whether its value may be shared (not for VRs that depend on other attributes)."""
    tag = BaseTag(tag_for_keyword(keyword))
    return tag, " or " not in dictionary_VR(tag)


class ValueCache:
    """Converted values keyed by their raw form; one cache per load (it holds no file)."""

    def __init__(self) -> None:
        self._seen: dict[tuple, Any] = {}

    def values(self, ds: Dataset, keywords: tuple[str, ...]) -> Values:
        """The present ``keywords`` of ``ds``; pydicom converts each distinct raw value once."""
        charset = ds.get_item(_CHARSET)
        encoding = None if charset is None else str(charset.value)
        out: Values = {}
        for keyword in keywords:
            tag, shareable = _tag(keyword)
            element = ds.get_item(tag, keep_deferred=True)
            if element is None:
                continue
            if not isinstance(element, RawDataElement):
                out[keyword] = element.value  # already converted
            elif element.value is None or not shareable:  # deferred (over 64 KB) or VR-dependent
                out[keyword] = ds[tag].value
            else:
                key = (tag, element.VR, element.is_implicit_VR, element.is_little_endian, element.value, encoding)
                if key not in self._seen:
                    self._seen[key] = ds[tag].value  # converted by pydicom, and kept in this ds
                out[keyword] = self._seen[key]
        return out
