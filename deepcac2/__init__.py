"""deepcac2: build, check and release a coronary-artery-calcium dataset for NLST.

The importable package is split over the repository's top-level folders:
``deepcac2.pipeline`` (pipeline/), ``deepcac2.schemas`` (schemas/),
``deepcac2.qa`` (qa/) and ``deepcac2.release`` (release/).
"""

from deepcac2._version import __version__

__all__ = ["__version__"]
