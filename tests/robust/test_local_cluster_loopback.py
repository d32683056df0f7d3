"""The local cluster is closed to the network: scheduler, workers and every HTTP route listen on
loopback, and the dashboard (no authentication, shows series UIDs) is off unless asked for.

On the old code ``dashboard_address=":8787"`` served the dashboard on every interface.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request

import psutil
import pytest

from deepcac2.pipeline.orchestrate.cluster import LOOPBACK, ClusterSpec, open_client

pytestmark = pytest.mark.slow


def _listening() -> list[str]:
    """The addresses this process listens on."""
    conns = psutil.Process(os.getpid()).net_connections(kind="inet")
    return sorted({c.laddr.ip for c in conns if c.status == psutil.CONN_LISTEN})


def _status_page(client) -> int:
    port = client.scheduler_info()["services"]["dashboard"]
    try:
        return urllib.request.urlopen(f"http://{LOOPBACK}:{port}/status", timeout=30).status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize("dashboard", [None, f"{LOOPBACK}:0"], ids=["default", "--dashboard"])
def test_everything_listens_on_loopback_and_the_dashboard_only_when_asked(dashboard):
    assert ClusterSpec().dashboard_address is None, "off by default"
    with open_client(ClusterSpec(workers=1, threads=1, dashboard_address=dashboard)) as client:
        assert client.scheduler.address.startswith(f"tcp://{LOOPBACK}:")
        assert _listening() == [LOOPBACK]  # the scheduler and its HTTP routes run in this process
        assert set(sum(client.run(_listening).values(), [])) == {LOOPBACK}  # the workers
        assert _status_page(client) == (200 if dashboard else 404)
