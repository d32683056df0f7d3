"""Where a series can be looked at: its overlay picture, its dashboard row, IDC's viewer.

The QA report (``qa/report.html``) and the release dashboard (``dashboard/index.html``) sit
side by side in a release, with the pictures in ``qa/images``; the links are relative so the
folder works from ``file://`` and from any static host.
"""

from __future__ import annotations

from urllib.parse import quote

#: IDC's OHIF v3 viewer, in the form idc-index's ``get_viewer_URL(viewer_selector="ohif_v3")`` builds
#: (``get_viewer_URL`` itself refuses series not yet in IDC's index, as ours are until ingested)
VIEWER_URL = "https://viewer.imaging.datacommons.cancer.gov/v3/viewer/?StudyInstanceUIDs={study}"
#: from qa/report.html
OVERLAY = "images/{uid}.png"
DASHBOARD_ROW = "../dashboard/index.html#series-{uid}"


def viewer_url(study: str, series: str | None = None) -> str:
    """The v3 viewer on a study, opened on ``series`` (our SEG or SR) when given."""
    url = VIEWER_URL.format(study=quote(str(study)))
    return f"{url}&initialSeriesInstanceUID={quote(str(series))}" if series else url
