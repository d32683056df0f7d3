"""Coded concepts of the SR that PS3.16 does not define, in a documented private scheme.

``99DEEPCAC`` is a private coding scheme (PS3.16 §8.2: designators starting with
``99`` are private). It names the risk-category schemes and their bands, which have
no standard codes. Every concept here is listed in ``docs/outputs.md``.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sr.coding import Code

from deepcac2.errors import DeepCACError, ErrorCode
from deepcac2.pipeline.risk_categories import SCHEMES, labels

PRIVATE_SCHEME = "99DEEPCAC"

#: Risk category scheme -> concept name of its evaluation (the schemes are listed once, in ``pipeline/risk_categories.py``)
RISK_SCHEMES: dict[str, str] = {name: scheme.concept for name, scheme in SCHEMES.items()}


def risk_scheme_code(scheme: str) -> Code:
    """Concept name of a scheme's qualitative evaluation, e.g. ``(RISK-DEEPCAC, 99DEEPCAC, ...)``."""
    if scheme not in RISK_SCHEMES:
        raise DeepCACError(
            ErrorCode.E_SR_WRITE,
            f"unknown risk scheme {scheme!r}; known: {', '.join(RISK_SCHEMES)} (add it to pipeline/risk_categories.py)",
        )
    return Code(f"RISK-{scheme.upper().replace('_', '')}", PRIVATE_SCHEME, RISK_SCHEMES[scheme])


def risk_value_code(scheme: str, label: str) -> Code:
    """A band label of ``scheme`` as a coded value: code value = code meaning = the label, as in the tables.

    The label must be one of the scheme's bands in ``deepcac2.pipeline.risk_categories``. One
    spelling everywhere (``very low`` in ``cac_series``, the SR and IDC's
    ``qualitative_measurements``), so a join on the label needs no mapping; SH allows the
    inner space.
    """
    if label not in labels(scheme):
        raise DeepCACError(ErrorCode.E_SR_WRITE, f"{label!r} is not a {scheme} band; known: {labels(scheme)}")
    value = label
    if len(value) > 16:
        raise DeepCACError(ErrorCode.E_SR_WRITE, f"risk category label {label!r} is too long for a code value")
    return Code(value, PRIVATE_SCHEME, label)


def declare_private_scheme(ds: Dataset) -> None:
    """Add the Coding Scheme Identification item that PS3.3 C.12.1 asks for private schemes."""
    item = Dataset()
    item.CodingSchemeDesignator = PRIVATE_SCHEME
    item.CodingSchemeName = "DeepCAC2 private concepts"
    item.CodingSchemeResponsibleOrganization = "deepcac2 project"
    ds.CodingSchemeIdentificationSequence = [item]
