"""The anatomy registry: providers by entry point, the ``auto`` rule, fallbacks kept as notes."""

from __future__ import annotations

import argparse
from importlib.metadata import EntryPoint

import numpy as np
import pytest

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline import process, stage_values
from deepcac2.pipeline.anatomy import registry
from deepcac2.pipeline.anatomy.base import Anatomy, AnatomyProvenance

CT = stage_values.CTVolume(np.zeros((2, 3, 4), np.int16), stage_values.Geometry((0, 0, 0), (1, 1, 1)), "1.2.3")


def _anatomy(provider: str) -> Anatomy:
    heart = np.zeros(CT.shape, bool)
    heart[1, 1, 1] = True
    empty = np.zeros(CT.shape, bool)
    return Anatomy(heart, empty, empty, AnatomyProvenance(provider, "1"), notes=(f"{provider} note",))


class Seg:
    """Covers series whose params name a SEG; fails as the params say."""

    name = "idc-totalsegmentator"

    def covers(self, ref):
        return "seg" in ref.params

    def anatomy(self, ref, ct, *, cache=None):
        if ref.params.get("raise"):
            raise DeepCACError(ErrorCode(ref.params["raise"]), "seg says no")
        if ref.params.get("crash"):
            raise ZeroDivisionError("bug")
        return _anatomy(self.name)


class Classical:
    name = "classical"

    def covers(self, ref):
        return True

    def anatomy(self, ref, ct, *, cache=None):
        return _anatomy(self.name)


@pytest.fixture
def fake_providers(monkeypatch):
    import sys
    import types as pytypes

    module = pytypes.ModuleType("fake_anatomy_plugins")
    module.seg, module.classical = Seg, Classical
    module.broken = lambda: (_ for _ in ()).throw(RuntimeError("no"))
    module.not_a_provider = lambda: object()
    monkeypatch.setitem(sys.modules, "fake_anatomy_plugins", module)
    eps = {
        "idc-totalsegmentator": EntryPoint(
            "idc-totalsegmentator", "fake_anatomy_plugins:seg", registry.ENTRY_POINT_GROUP
        ),
        "classical": EntryPoint("classical", "fake_anatomy_plugins:classical", registry.ENTRY_POINT_GROUP),
        "broken": EntryPoint("broken", "fake_anatomy_plugins:broken", registry.ENTRY_POINT_GROUP),
        "odd": EntryPoint("odd", "fake_anatomy_plugins:not_a_provider", registry.ENTRY_POINT_GROUP),
    }
    monkeypatch.setattr(registry, "_entry_points", lambda: eps)
    registry.load_provider.cache_clear()
    yield
    registry.load_provider.cache_clear()


def test_auto_prefers_the_seg_where_it_covers_the_series(fake_providers):
    a = registry.resolve_anatomy(stage_values.SeriesRef("1.2.3", params={"seg": "x"}), CT)
    assert a.provenance.provider == "idc-totalsegmentator" and a.notes == ("idc-totalsegmentator note",)
    b = registry.resolve_anatomy(stage_values.SeriesRef("1.2.3"), CT)
    assert b.provenance.provider == "classical" and b.notes == ("classical note",)


@pytest.mark.parametrize("code", ["E_ANATOMY_MISMATCH", "E_ANATOMY_SEGMENTS", "E_ANATOMY_GEOMETRY", "E_ANATOMY_READ"])
def test_auto_falls_back_on_a_permanent_error_and_says_so(fake_providers, code):
    a = registry.resolve_anatomy(stage_values.SeriesRef("1.2.3", params={"seg": "x", "raise": code}), CT)
    assert a.provenance.provider == "classical"
    assert a.notes[0].startswith(f"anatomy: idc-totalsegmentator not used ({code}: seg says no)")
    assert a.notes[1:] == ("classical note",)


def test_auto_does_not_hide_a_transient_error(fake_providers):
    ref = stage_values.SeriesRef("1.2.3", params={"seg": "x", "raise": "E_FETCH_TRANSIENT"})
    with pytest.raises(DeepCACError) as err:
        registry.resolve_anatomy(ref, CT)
    assert err.value.code is ErrorCode.E_FETCH_TRANSIENT  # the task retries it; falling back would hide it


def test_a_named_provider_fails_the_series_instead_of_falling_back(fake_providers):
    with pytest.raises(DeepCACError) as err:
        registry.resolve_anatomy(
            stage_values.SeriesRef("1.2.3", params={"seg": "x", "raise": "E_ANATOMY_MISMATCH"}),
            CT,
            "idc-totalsegmentator",
        )
    assert err.value.code is ErrorCode.E_ANATOMY_MISMATCH
    with pytest.raises(DeepCACError) as err:
        registry.resolve_anatomy(stage_values.SeriesRef("1.2.3"), CT, "idc-totalsegmentator")
    assert err.value.code is ErrorCode.E_ANATOMY_UNAVAILABLE


def test_unknown_and_broken_providers(fake_providers):
    for name in ("nope", "broken", "odd"):
        with pytest.raises(DeepCACError) as err:
            registry.load_provider(name)
        assert err.value.code is ErrorCode.E_ANATOMY_UNKNOWN
    assert "auto" in str(pytest.raises(DeepCACError, registry.check_name, "nope").value)
    assert registry.check_name("auto") == "auto" and registry.check_name("classical") == "classical"
    with pytest.raises(argparse.ArgumentTypeError, match="unknown anatomy provider 'nope'"):
        registry.parse_name("nope")


def test_process_anatomy_turns_a_provider_bug_into_a_coded_error(fake_providers):
    with pytest.raises(DeepCACError) as err:
        process.anatomy(stage_values.SeriesRef("1.2.3", params={"seg": "x", "crash": True}), CT, "idc-totalsegmentator")
    assert err.value.code is ErrorCode.E_ANATOMY_READ and "ZeroDivisionError" in err.value.message


def test_installed_providers_include_classical():
    assert "classical" in registry.available_providers()


def test_auto_skips_a_preferred_provider_that_is_not_installed(monkeypatch):
    eps = {"classical": EntryPoint("classical", "fake_anatomy_plugins:classical", registry.ENTRY_POINT_GROUP)}
    import sys
    import types as pytypes

    module = pytypes.ModuleType("fake_anatomy_plugins")
    module.classical = Classical
    monkeypatch.setitem(sys.modules, "fake_anatomy_plugins", module)
    monkeypatch.setattr(registry, "_entry_points", lambda: eps)
    registry.load_provider.cache_clear()
    try:
        assert (
            registry.resolve_anatomy(stage_values.SeriesRef("1.2.3", params={"seg": "x"}), CT).provenance.provider
            == "classical"
        )
    finally:
        registry.load_provider.cache_clear()


@pytest.mark.parametrize(
    "command", [["run", "--cohort", "c.parquet", "--out", "o"], ["infer", "--ct", "d", "--out", "o"]]
)
def test_cli_refuses_an_unknown_anatomy_at_parse_time(command, capsys):
    from deepcac2.cli import main as cli_main

    with pytest.raises(SystemExit) as exit_:
        cli_main([*command, "--anatomy", "nope"])
    assert exit_.value.code == 2
    assert "unknown anatomy provider 'nope'" in capsys.readouterr().err
