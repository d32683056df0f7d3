"""What every release cites, once: the card, CITATION.cff and zenodo.json read it from here.

- the NLST collection on TCIA, whose CT the release derives from;
- the NLST trial's primary report;
- NCI Imaging Data Commons, where the source CT and our DICOM objects live;
- IDC's TotalSegmentator segmentations, whose heart the default anatomy uses (credited in the card's
  Distribution section too).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    """One work the release cites."""

    #: the text the card prints
    text: str
    doi: str
    #: CITATION.cff ``references`` type
    cff_type: str
    title: str
    authors: tuple[str, ...]
    year: int
    #: journal or publisher, as CFF's ``journal``/``publisher``
    venue: str
    #: Zenodo ``related_identifiers`` relation and resource type
    relation: str
    resource_type: str


REFERENCES: tuple[Reference, ...] = (
    Reference(
        text="National Lung Screening Trial Research Team (2013). Data from the National Lung Screening Trial "
        "(NLST) [Data set]. The Cancer Imaging Archive. https://doi.org/10.7937/TCIA.HMQ8-J677",
        doi="10.7937/TCIA.HMQ8-J677",
        cff_type="data",
        title="Data from the National Lung Screening Trial (NLST)",
        authors=("National Lung Screening Trial Research Team",),
        year=2013,
        venue="The Cancer Imaging Archive",
        relation="isDerivedFrom",
        resource_type="dataset",
    ),
    Reference(
        text="National Lung Screening Trial Research Team (2011). Reduced lung-cancer mortality with low-dose "
        "computed tomographic screening. N Engl J Med 365(5):395-409. https://doi.org/10.1056/NEJMoa1102873",
        doi="10.1056/NEJMoa1102873",
        cff_type="article",
        title="Reduced lung-cancer mortality with low-dose computed tomographic screening",
        authors=("National Lung Screening Trial Research Team",),
        year=2011,
        venue="New England Journal of Medicine",
        relation="references",
        resource_type="publication-article",
    ),
    Reference(
        text="Fedorov A. et al. (2023). National Cancer Institute Imaging Data Commons: toward transparency, "
        "reproducibility, and scalability in imaging artificial intelligence. RadioGraphics 43(12):e230180. "
        "https://doi.org/10.1148/rg.230180",
        doi="10.1148/rg.230180",
        cff_type="article",
        title="National Cancer Institute Imaging Data Commons: Toward Transparency, Reproducibility, and "
        "Scalability in Imaging Artificial Intelligence",
        authors=("Fedorov, Andrey", "et al."),
        year=2023,
        venue="RadioGraphics",
        relation="references",
        resource_type="publication-article",
    ),
    Reference(
        text="Thiriveedhi V. K., Krishnaswamy D., Clunie D., Fedorov A. (2024). TotalSegmentator-CT-Segmentations: "
        "TotalSegmentator segmentations and radiomics features for NCI Imaging Data Commons CT images. Zenodo. "
        "https://doi.org/10.5281/zenodo.8347011 (where `anatomy_provider` is `idc-totalsegmentator`)",
        doi="10.5281/zenodo.8347011",
        cff_type="data",
        title="TotalSegmentator-CT-Segmentations: TotalSegmentator segmentations and radiomics features for NCI "
        "Imaging Data Commons CT images",
        authors=("Thiriveedhi, Vamsi Krishna", "Krishnaswamy, Deepa", "Clunie, David", "Fedorov, Andrey"),
        year=2024,
        venue="Zenodo",
        relation="references",
        resource_type="dataset",
    ),
)


@dataclass(frozen=True)
class Creator:
    """A creator of the release: ``"Family, Given|Affiliation|ORCID"`` on the command line (``--creator``)."""

    name: str
    affiliation: str = ""
    orcid: str = ""

    @classmethod
    def parse(cls, text: str) -> Creator:
        parts = [p.strip() for p in str(text).split("|")]
        if not parts[0]:
            raise ValueError(f"creator {text!r} has no name")
        return cls(*(parts + ["", ""])[:3])

    def zenodo(self) -> dict[str, str]:
        out = {"name": self.name}
        if self.affiliation:
            out["affiliation"] = self.affiliation
        if self.orcid:
            out["orcid"] = self.orcid
        return out

    def cff_lines(self, quote) -> list[str]:  # noqa: ANN001 - json.dumps
        """A CFF person (``family-names``, ``given-names``) for ``Family, Given``, else an entity ``name``."""
        if "," in self.name:
            family, given = (p.strip() for p in self.name.split(",", 1))
            lines = [f"  - family-names: {quote(family)}", f"    given-names: {quote(given)}"]
        else:
            lines = [f"  - name: {quote(self.name)}"]
        if self.affiliation:
            lines.append(f"    affiliation: {quote(self.affiliation)}")
        if self.orcid:
            lines.append(f"    orcid: {quote('https://orcid.org/' + self.orcid.rsplit('/', 1)[-1])}")
        return lines


def card_markdown() -> str:
    """The card's list of what to cite besides the release itself."""
    return "\n" + "\n".join(f"  - {r.text}" for r in REFERENCES) + "\n"


def zenodo_related() -> list[dict[str, str]]:
    """Zenodo ``related_identifiers``: the source collection (isDerivedFrom) and the works cited."""
    return [
        {"identifier": r.doi, "relation": r.relation, "resource_type": r.resource_type, "scheme": "doi"}
        for r in REFERENCES
    ]


def cff_references(quote) -> list[str]:  # noqa: ANN001 - json.dumps
    """CITATION.cff ``references``: each cited work with its DOI."""
    lines = ["references:"]
    for r in REFERENCES:
        lines += [f"  - type: {r.cff_type}", f"    title: {quote(r.title)}", "    authors:"]
        for a in r.authors:
            if "," in a:
                family, given = (p.strip() for p in a.split(",", 1))
                lines.append(f"      - family-names: {quote(family)}\n        given-names: {quote(given)}")
            else:
                lines.append(f"      - name: {quote(a)}")
        venue = "journal" if r.cff_type == "article" else "publisher"
        value = quote(r.venue) if venue == "journal" else "{name: " + quote(r.venue) + "}"
        lines += [f"    year: {r.year}", f"    {venue}: {value}", f"    doi: {quote(r.doi)}"]
    return lines
