"""The series of a run, a batch at a time: an NLST cohort is never held as SeriesRefs at once.

A SeriesRef with its cohort parameters weighs ~3.4 KB in Python: 129,147 of them held for
the whole run cost ~0.4 GB of the client's memory. A run reads its cohort in three passes
of ``REF_BATCH_ROWS`` rows instead, keeping per series only what the passes need:

1. ``check_cohort``: every SeriesInstanceUID present and listed once (the set of uids is the
   one O(series) structure kept: the end of the run sweeps and assembles by it), and with
   ``--verify-inputs`` every local series fingerprinted; before the output is touched;
2. ``plan``: which series to run (one byte each), read from each series' fragment status
   line (``OutputStore.head``), and the inputs of the series done before checked again;
3. ``pending``: the series to run, in cohort order, as the scheduling loop asks for them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.cohort.table import REF_BATCH_ROWS
from deepcac2.pipeline.orchestrate.inputs import CONTENT, changed_since_scored, is_local
from deepcac2.pipeline.orchestrate.store import Fragment, OutputStore
from deepcac2.pipeline.orchestrate.tasks import Failure
from deepcac2.pipeline.sources.local import FINGERPRINT
from deepcac2.pipeline.stage_values import SeriesRef


@dataclass(frozen=True)
class SeriesBatches:
    """A re-readable list of series: each ``batches()`` call yields them again, in order, a batch at a time."""

    read: Callable[[], Iterator[list[SeriesRef]]]
    #: without the cohort's fingerprints (``--rescan``: the load step does not compare them)
    rescan: bool = False

    def batches(self) -> Iterator[list[SeriesRef]]:
        for batch in self.read():
            yield [_without_fingerprints(r) for r in batch] if self.rescan else batch


def _without_fingerprints(ref: SeriesRef) -> SeriesRef:
    return replace(ref, params={k: v for k, v in ref.params.items() if k not in (FINGERPRINT, CONTENT)})


def from_refs(refs: Sequence[SeriesRef]) -> SeriesBatches:
    """Series a caller already holds (a library call, a test)."""
    return SeriesBatches(lambda: (list(refs[i : i + REF_BATCH_ROWS]) for i in range(0, len(refs), REF_BATCH_ROWS)))


def from_cohort(path: str | os.PathLike[str]) -> SeriesBatches:
    """The series of a cohort Parquet file, read and checked ``REF_BATCH_ROWS`` rows at a time."""
    from deepcac2.pipeline.cohort.table import cohort_to_refs, read_cohort_batches

    return SeriesBatches(lambda: (cohort_to_refs(table) for table in read_cohort_batches(path, REF_BATCH_ROWS)))


def check_cohort(series: SeriesBatches, *, verify_inputs: bool) -> set[str]:
    """The cohort's SeriesInstanceUIDs; E_COHORT_EMPTY / E_COHORT_INVALID before any work.

    With ``verify_inputs``, every local series needs the cohort's source fingerprint (a run
    that must be sure of its inputs cannot be, for those without).
    """
    seen: set[str] = set()
    missing, first_missing = 0, ""
    for batch in series.batches():
        for ref in batch:
            if not ref.series_uid:
                raise DeepCACError(ErrorCode.E_COHORT_INVALID, "a cohort row has no SeriesInstanceUID")
            if ref.series_uid in seen:
                raise DeepCACError(ErrorCode.E_COHORT_INVALID, f"series {ref.series_uid} is listed twice in the cohort")
            seen.add(ref.series_uid)
            if verify_inputs and is_local(ref) and not (ref.params or {}).get(FINGERPRINT):
                missing, first_missing = missing + 1, first_missing or ref.series_uid
    if not seen:
        raise DeepCACError(
            ErrorCode.E_COHORT_EMPTY, "the cohort lists no series: nothing to run (check the cohort step's output)"
        )
    if missing:
        raise DeepCACError(
            ErrorCode.E_COHORT_INVALID,
            f"--verify-inputs: {missing} local series have no source_fingerprint in the cohort "
            f"(first: {first_missing}); make the cohort again with `deepcac2 cohort --from-dir`",
            series=first_missing,
        )
    return seen


@dataclass
class Plan:
    """What a run does with each series of its cohort, in a byte per series."""

    total: int = 0
    #: 1 for each series (by cohort position) to run, 0 for one committed before (skipped or changed)
    to_run: bytearray = field(default_factory=bytearray)
    #: series done before whose input changed, run again (``--rescan``), after the others
    again: list[SeriesRef] = field(default_factory=list)
    #: series done before whose input changed (E_INPUT_CHANGED, unless ``--rescan`` runs them again)
    changed: list[Failure] = field(default_factory=list)

    @property
    def todo(self) -> int:
        return self.to_run.count(1) + len(self.again)


def plan(
    series: SeriesBatches, store: OutputStore, retry_codes: frozenset[str], *, verify_inputs: bool, rescan: bool
) -> Plan:
    """Which series to run: not committed, a transient failure, or a failure whose code is asked for again.

    The inputs of the series done before are checked again (even on a finished run): those
    that changed are E_INPUT_CHANGED, or with ``rescan`` run again as they are now.
    """
    out = Plan()
    for batch in series.batches():
        done_local: list[SeriesRef] = []
        scored: dict[str, str | None] = {}
        for ref in batch:
            fragment = store.head(ref.series_uid)
            run = to_run(fragment, retry_codes)
            out.to_run.append(1 if run else 0)
            if not run and fragment is not None and fragment.status == "done" and is_local(ref):
                done_local.append(ref)
                scored[ref.series_uid] = fragment.inputs
        out.total += len(batch)
        changed = changed_since_scored(done_local, scored, content=verify_inputs) if done_local else []
        out.changed += changed
        if rescan and changed:
            again = {f.series_uid for f in changed}
            out.again += [r for r in done_local if r.series_uid in again]
    return out


def pending(series: SeriesBatches, planned: Plan) -> Iterator[SeriesRef]:
    """The series to run, in cohort order (then those ``--rescan`` runs again), read as they are asked for."""
    at = 0
    for batch in series.batches():
        if at + len(batch) > planned.total:
            break
        for i, ref in enumerate(batch):
            if planned.to_run[at + i]:
                yield ref
        at += len(batch)
    if at != planned.total:  # the file was replaced while the run read it: its positions mean nothing now
        raise DeepCACError(
            ErrorCode.E_COHORT_INVALID, f"the cohort changed during the run ({planned.total} series planned)"
        )
    yield from planned.again


def to_run(fragment: Fragment | None, retry_codes: frozenset[str]) -> bool:
    """Not committed yet, a transient failure (retried by --resume), or a failure whose code is asked for again."""
    if fragment is None:
        return True
    return fragment.retry_on_resume or (fragment.status == "failed" and fragment.code in retry_codes)
