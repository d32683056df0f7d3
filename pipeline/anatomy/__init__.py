"""The anatomy stage: heart and great vessels on the CT grid, from a named provider.

The CAC models take an :class:`~deepcac2.pipeline.anatomy.base.Anatomy` instead of
computing a heart of their own. See ``base.py`` for the value and the provider
interface, ``registry.py`` for how providers are found and how ``auto`` chooses.
"""

from deepcac2.pipeline.anatomy.base import Anatomy, AnatomyProvenance, AnatomyProvider

__all__ = ["Anatomy", "AnatomyProvenance", "AnatomyProvider"]
