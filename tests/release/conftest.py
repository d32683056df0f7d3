from __future__ import annotations

from pathlib import Path

import pytest

from tests.release.runfactory import make_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("run") / "RUN")


@pytest.fixture(scope="module")
def release_dir(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deepcac2.release.build import build_release

    return build_release(run_dir, "1.0.0", tmp_path_factory.mktemp("rel") / "REL", dashboard_patients=4)
