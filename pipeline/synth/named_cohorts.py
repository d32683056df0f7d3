"""Named synthetic cohorts written to disk: ``demo``, ``qrm``, ``bad`` and a single ``chest``.

Layout under ``out_dir``::

    <PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>/<n>.dcm
    truth/<SeriesInstanceUID>.json     (not for localizers)
    truth.parquet                      (one row per series and convention)
    manifest.parquet                   (one row per series)

A series whose UID is not a valid UID (the ``uid_path_chars`` defect) gets a safe
folder and file name instead; the manifest says which.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEG2000Lossless, RLELossless

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.synth.defects import BAD_UID, DEFECTS
from deepcac2.pipeline.synth.dicom_writer import write_localizer, write_series
from deepcac2.pipeline.synth.image_truth import image_expected
from deepcac2.pipeline.synth.nlst_headers import SCANNERS, SHARP_KERNELS, SeriesMeta, study_meta
from deepcac2.pipeline.synth.phantom import ChestSpec, Phantom, PlaqueSpec, build_chest, random_plaques
from deepcac2.pipeline.synth.qrm import QRMSpec, build_qrm
from deepcac2.pipeline.synth.truth import phantom_expected
from deepcac2.pipeline.synth.truth_tables import MANIFEST, TRUTH, to_table, truth_document, truth_rows

COHORTS = ("demo", "qrm", "bad", "chest")


def safe_name(series_uid: str) -> str:
    """The series UID when it is a valid UID, else a stable, path-safe stand-in."""
    if UID(series_uid).is_valid:
        return series_uid
    return "invalid-uid-" + hashlib.sha1(series_uid.encode()).hexdigest()[:12]


@dataclass
class CohortWriter:
    """Writes series and collects manifest and truth rows."""

    name: str
    out: Path
    manifest: list[dict[str, Any]]
    truth: list[dict[str, Any]]
    #: writes IDC's TotalSegmentator SEG of every chest (``totalseg_writer.py``); None: no SEGs
    segs: Any = None

    def add(
        self,
        kind: str,
        phantom: Phantom,
        meta: SeriesMeta,
        *,
        defect: str | None = None,
        expected_error_code: str | None = None,
        transfer_syntax: UID = ExplicitVRLittleEndian,
        signed: bool = False,
    ) -> None:
        folder = Path(meta.patient_id) / meta.study_uid / safe_name(meta.series_uid)
        target = self.out / folder
        if kind == "localizer":
            paths = write_localizer(phantom, meta, target)
        elif defect is not None:
            paths = DEFECTS[defect].write(phantom, meta, target)
        else:
            paths = write_series(phantom, meta, target, transfer_syntax=transfer_syntax, signed=signed)
            if kind == "chest" and self.segs is not None:
                from deepcac2.pipeline.synth.totalseg_writer import seg_path_for

                self.segs.submit(phantom, target, seg_path_for(target.parent, meta.series_uid))
        g = phantom.geometry
        row = {
            "PatientID": meta.patient_id,
            "StudyInstanceUID": meta.study_uid,
            "SeriesInstanceUID": meta.series_uid,
            "study_year": meta.study_year,
            "kind": kind,
            "defect": defect,
            "expected_error_code": expected_error_code,
            "folder": folder.as_posix(),
            "n_files": len(paths),
            "series_description": meta.describe(
                phantom.hu.shape[2] * g.spacing[0],
                None if kind == "localizer" else phantom.slice_thickness_mm,
                phantom.kvp,
            ),
            "scanner_manufacturer": meta.scanner.manufacturer,
            "kernel": meta.kernel,
            "transfer_syntax": str(
                {"jpeg2000": JPEG2000Lossless, "rle": RLELossless}.get(defect or "", transfer_syntax)
            ),
            "truth_file": None,
        }
        if kind != "localizer":
            expected = phantom_expected(phantom)
            in_image = image_expected(phantom)
            rel = Path("truth") / f"{safe_name(meta.series_uid)}.json"
            (self.out / "truth").mkdir(parents=True, exist_ok=True)
            doc = truth_document(phantom, row, expected, in_image)
            (self.out / rel).write_text(json.dumps(doc, indent=1, sort_keys=True))
            row["truth_file"] = rel.as_posix()
            self.truth.extend(truth_rows(phantom, row, expected, in_image))
        self.manifest.append(row)

    def finish(self) -> pa.Table:
        if self.segs is not None:
            self.segs.close()
        manifest = to_table(self.manifest, MANIFEST)
        pq.write_table(manifest, self.out / "manifest.parquet")
        pq.write_table(to_table(self.truth, TRUTH), self.out / "truth.parquet")
        return manifest


#: demo patients: plaques at T0 as (vessel, size mm, HU, position); later studies grow them and add more
DEMO_PLAQUES: tuple[tuple[tuple[str, float, int, float], ...], ...] = (
    (),  # no calcium: zero in every scheme
    (("LAD", 2.0, 180, 0.3),),  # minimal
    (("LAD", 3.0, 420, 0.25), ("RCA", 2.0, 250, 0.4)),  # mild
    (("LAD", 5.0, 450, 0.2), ("LCX", 3.0, 350, 0.5)),  # moderate
    (("LAD", 5.0, 500, 0.15), ("LAD", 4.0, 420, 0.6), ("RCA", 5.0, 600, 0.3), ("LM", 3.0, 380, 0.5)),  # high
    (("RCA", 2.5, 220, 0.6),),
    (("LAD", 4.0, 380, 0.4), ("LCX", 4.0, 300, 0.3), ("RCA", 3.0, 250, 0.7)),
    (("LCX", 3.5, 400, 0.6), ("LAD", 2.0, 160, 0.7)),
    tuple(("LAD RCA LCX LAD RCA LAD".split()[i], 5.0, 700, 0.1 + 0.14 * i) for i in range(6)),  # severe
    (("LM", 2.0, 140, 0.3),),
)


#: burden tiers of drawn demo patients: (plaques at T0 (min, max), size mm, HU), zero to severe
DRAWN_TIERS: tuple[tuple[tuple[int, int], tuple[float, float], tuple[int, int]], ...] = (
    ((0, 0), (0.0, 0.0), (0, 0)),  # no calcium
    ((1, 1), (1.5, 2.5), (130, 260)),  # minimal
    ((1, 2), (2.0, 3.5), (180, 450)),  # mild
    ((2, 3), (3.0, 5.0), (280, 520)),  # moderate
    ((3, 5), (4.0, 6.0), (350, 650)),  # high
    ((5, 7), (4.5, 6.5), (450, 800)),  # severe
)
#: the tier of each of the ten drawn patients (shuffled per seed), so every cohort spans zero to severe
DRAWN_TIER_OF_PATIENT = (0, 1, 1, 2, 2, 3, 3, 4, 4, 5)
#: vessels of drawn plaques and how often (LAD most, LM least, as in CAC studies)
DRAWN_VESSELS = (("LAD", 0.45), ("RCA", 0.25), ("LCX", 0.2), ("LM", 0.1))


def drawn_patient_plaques(seed: int, patient: int) -> tuple[tuple[str, float, int, float], ...]:
    """A new demo patient's T0 plaques (vessel, size mm, HU, position), drawn from ``seed``."""
    tier = DRAWN_TIER_OF_PATIENT[int(np.random.default_rng([seed, 3]).permutation(10)[patient])]
    (lo, hi), (s0, s1), (h0, h1) = DRAWN_TIERS[tier]
    rng = np.random.default_rng([seed, 4, patient])
    names, weights = zip(*DRAWN_VESSELS, strict=True)
    out = []
    for _ in range(int(rng.integers(lo, hi + 1))):
        vessel = str(rng.choice(names, p=weights))
        size = float(rng.uniform(min(s0, 2.0), 3.0) if vessel == "LM" else rng.uniform(s0, s1))  # the LM is short
        out.append((vessel, round(size, 2), int(rng.integers(h0, h1 + 1)), round(float(rng.uniform(0.08, 0.9)), 3)))
    return tuple(out)


def _demo_plaques(patient: int, year: int, seed: int = 0) -> tuple[PlaqueSpec, ...]:
    """Seed 0: the fixed demo patients (DEMO_PLAQUES); any other seed draws new ones."""
    grow = 1.0 + 0.3 * year
    table = DEMO_PLAQUES[patient] if seed == 0 else drawn_patient_plaques(seed, patient)
    base = [PlaqueSpec(v, size * grow, hu, pos) for v, size, hu, pos in table]
    grows = patient not in (0, 9) if seed == 0 else bool(table)
    if year and grows:
        base.append(PlaqueSpec("RCA" if patient % 2 else "LCX", 2.0 + year, 300, 0.8))
    return tuple(base)


@dataclass(frozen=True)
class PlannedSeries:
    """One series of a planned cohort, before any voxel is made."""

    kind: str
    spec: ChestSpec
    meta: SeriesMeta
    signed: bool = False


#: great-vessel demo scans: this much z (mm), centred this far above the heart's centre,
#: so they hold the liver dome below the heart and the whole aortic arch above it
GREAT_VESSEL_Z_MM, GREAT_VESSEL_Z_CENTER_MM = 220.0, 25.0
#: great-vessel demo patients with hearts that are hard to find (``ChestSpec.habitus``)
DEMO_HABITUS = {6: ("anterior_contact",), 8: ("wide_heart",), 9: ("obese", "anterior_contact")}


def demo_plan(
    seed: int = 0, slices: int | None = None, rows: int = 512, noise: float = 20.0, great_vessels: bool = False
) -> list[PlannedSeries]:
    """The demo cohort: 10 patients; patients 0-3 have T0, T1, T2, the others T0 only.

    Some studies hold a second (sharp) kernel of the same scan: same anatomy and
    plaques, other noise. Localizers (OPL) come with a few studies. Pixel spacing is
    0.6-0.8 mm at 512 rows and scales with ``rows`` so the field of view stays a chest.
    ``great_vessels``: real mediastinal anatomy, and 220 mm of z (heart to above the arch);
    patients 6, 8 and 9 then have hard hearts (``DEMO_HABITUS``: against the front chest
    wall, wide, obese).

    ``seed`` 0 gives the fixed demo patients and plaques (``DEMO_PLAQUES``); any other seed
    draws ten new patients (plaques from zero to severe, ``drawn_patient_plaques``; anatomy,
    distractor calcium and noise from the spec seeds), for cohorts never seen while tuning.
    """
    plan = []
    for p in range(len(DEMO_PLAQUES)):
        scanner = SCANNERS[p % len(SCANNERS)]
        for year in range(3 if p < 4 else 1):
            overlap = p in (2, 5) and year == 0  # increment < thickness
            thick, inc = (2.5, 2.0) if overlap else (2.0, 2.0) if p == 7 else (2.5, 2.5)
            kvp = 140 if scanner.vendor_code in ("SIEMENS", "TOSHIBA") and p % 3 == 0 else 120
            spec = ChestSpec(
                seed=seed * 1000 + p * 10 + year,
                rows=rows,
                cols=rows,
                n_slices=slices or int(round((GREAT_VESSEL_Z_MM if great_vessels else 160.0) / inc)),
                pixel_spacing_mm=round((0.6 + 0.025 * ((p * 3 + year) % 9)) * 512 / rows, 4),
                slice_thickness_mm=thick,
                slice_increment_mm=inc,
                kvp=kvp,
                plaques=_demo_plaques(p, year, seed),
                mass_factor=0.85 if p == 3 else None,
                great_vessels=great_vessels,
                z_center_mm=GREAT_VESSEL_Z_CENTER_MM if great_vessels else None,
                # a great-vessel patient keeps its anatomy from study to study
                anatomy_seed=seed * 1000 + p * 10 if great_vessels else None,
                habitus=DEMO_HABITUS.get(p, ()) if great_vessels else (),
            )
            meta = study_meta("demo", seed, p, year, scanner, scanner.kernels[0], tube_current_ma=40 + 10 * (p % 3))
            two_kernels = (p in (1, 4, 6) and year == 0) or p == 3
            for n, kernel in enumerate(scanner.kernels[: 2 if two_kernels else 1]):
                sharp = kernel in SHARP_KERNELS
                noisy = replace(
                    spec,
                    noise_sd_hu=noise * (1.8 if sharp else 1.0),
                    blur_sigma_mm=0.0 if noise == 0 else (0.3 if sharp else 0.6),
                    noise_seed=n,
                )
                m = meta if n == 0 else meta.with_series(kernel, 2 + n, kernel=kernel)
                plan.append(PlannedSeries("chest", noisy, m, signed=(p + year) % 3 == 1))
                if n == 0 and ((year == 0 and p % 2 == 0) or (p == 2 and year == 2)):
                    plan.append(PlannedSeries("localizer", noisy, meta.with_series("localizer", 1, image_code="OPL")))
    return plan


def _write_plan(w: CohortWriter, plan: list[PlannedSeries]) -> None:
    last: tuple[ChestSpec, Phantom] | None = None
    for item in plan:
        if last is None or last[0] != item.spec:
            last = (item.spec, build_chest(item.spec))
        # a localizer series alone holds no axial image: the loader refuses it
        code = "E_NO_IMAGES" if item.kind == "localizer" else None
        w.add(item.kind, last[1], item.meta, signed=item.signed, expected_error_code=code)


def _bad(w: CohortWriter, seed: int) -> None:
    spec = ChestSpec(
        seed=seed,
        rows=128,
        cols=128,
        n_slices=40,
        pixel_spacing_mm=2.5,
        plaques=(PlaqueSpec("LAD", 5.0, 400, 0.3), PlaqueSpec("RCA", 5.0, 250, 0.5)),
    )
    phantom = build_chest(spec)
    for n, (name, defect) in enumerate(DEFECTS.items()):
        scanner = SCANNERS[n % len(SCANNERS)]
        meta = study_meta("bad", seed, 900 + n, 0, scanner, scanner.kernels[0])
        if name == "uid_path_chars":  # the manifest and truth carry the UID the headers hold
            meta = replace(meta, series_uid=BAD_UID)
        w.add("bad", phantom, meta, defect=name, expected_error_code=defect.expected_error_code)


def _qrm(w: CohortWriter, seed: int, rows: int, noise: float) -> None:
    for n, kvp in enumerate((120, 140)):
        spec = QRMSpec(seed=seed, rows=rows, cols=rows, kvp=kvp, noise_sd_hu=noise if n else 0.0)
        meta = study_meta("qrm", seed, 800, n, SCANNERS[3], "B30f")
        w.add("qrm", build_qrm(spec), meta)


def _chest(w: CohortWriter, seed: int, slices: int | None, rows: int, noise: float, plaques: int, **opts: Any) -> None:
    rng = np.random.default_rng([seed, 7])
    if opts.get("great_vessels"):  # heart to above the arch, unless told otherwise
        opts.setdefault("z_center_mm", GREAT_VESSEL_Z_CENTER_MM)
        slices = slices or int(round(GREAT_VESSEL_Z_MM / opts.get("slice_increment_mm", 2.5)))
    spec = ChestSpec(
        seed=seed,
        rows=rows,
        cols=rows,
        n_slices=slices or 64,
        noise_sd_hu=noise,
        blur_sigma_mm=0.5 if noise else 0.0,
        plaques=random_plaques(rng, plaques),
        **opts,
    )
    scanner = SCANNERS[seed % len(SCANNERS)]
    w.add("chest", build_chest(spec), study_meta("chest", seed, 0, 0, scanner, scanner.kernels[0]))


def write_cohort(
    name: str,
    out_dir: str | Path,
    seed: int = 0,
    *,
    slices: int | None = None,
    rows: int = 512,
    noise: float | None = None,
    plaques: int = 4,
    great_vessels: bool = False,
    totalseg: bool = True,
    **chest_opts: Any,
) -> pa.Table:
    """Write the named cohort to ``out_dir`` and return its manifest.

    ``slices`` overrides the number of slices of chest series (demo default: 160 mm of
    z around the heart); ``rows`` sets rows = columns; ``noise`` is the noise SD in HU
    of soft kernels (sharp kernels get 1.8x; 0 makes everything exact; default 20 for
    demo and chest, 0 for QRM's first series). ``plaques`` and ``chest_opts`` (ChestSpec
    fields) apply to the single ``chest`` cohort. ``great_vessels`` builds the demo and
    chest cohorts' chests with real mediastinal anatomy (``ChestSpec.great_vessels``).
    ``totalseg``: beside every chest CT, IDC's TotalSegmentator SEG of it (``totalseg_writer.py``),
    in its own series folder of the same study.
    """
    if name not in COHORTS:
        raise DeepCACError(ErrorCode.E_SYNTH_SPEC, f"unknown cohort {name!r}; choose one of {', '.join(COHORTS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    segs = None
    if totalseg and name in ("demo", "chest"):
        from deepcac2.pipeline.synth.totalseg_writer import SegWriter

        segs = SegWriter()
    w = CohortWriter(name, out, [], [], segs)
    noise = 20.0 if noise is None else float(noise)
    if name == "demo":
        _write_plan(w, demo_plan(seed, slices, rows, noise, great_vessels=great_vessels))
    elif name == "bad":
        _bad(w, seed)
    elif name == "qrm":
        _qrm(w, seed, rows, noise)
    else:
        _chest(w, seed, slices, rows, noise, plaques, great_vessels=great_vessels, **chest_opts)
    return w.finish()
