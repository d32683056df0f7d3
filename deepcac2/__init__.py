"""deepcac2: build, check and release a coronary-artery-calcium dataset for NLST.

The importable package is split over the repository's top-level folders:
``deepcac2.pipeline`` (pipeline/), ``deepcac2.schemas`` (schemas/),
``deepcac2.qa`` (qa/) and ``deepcac2.release`` (release/).
"""

from deepcac2._version import __version__

__all__ = ["__version__", "open_release"]


def __getattr__(name: str):  # lazy, so that importing deepcac2 stays light (no duckdb, pandas)
    if name == "open_release":
        from deepcac2.release.query import open_release

        return open_release
    raise AttributeError(f"module 'deepcac2' has no attribute {name!r}")
