"""Small phantoms shared by the synth tests (built once per session: they take about a second)."""

from __future__ import annotations

import pytest

from deepcac2.pipeline.synth.phantom import build_chest

from .phantoms import small_spec


@pytest.fixture(scope="session")
def small_chest():
    return build_chest(small_spec())
