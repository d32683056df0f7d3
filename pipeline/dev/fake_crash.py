"""Importing this module kills the process once: a worker lost while the run's plugin sets it up.

The fake stages' ``STAGES_CRASH_IN_SETUP`` name it among the modules a worker imports in the
plugin's ``setup`` (which runs while ``client.register_plugin`` waits). The first process to
import it creates the file named by ``DEEPCAC2_FAKE_CRASH_ONCE`` and exits at once; every later
import (another worker, a restarted one) finds the file and does nothing. Tests only.
"""

from __future__ import annotations

import os

CRASH_ENV = "DEEPCAC2_FAKE_CRASH_ONCE"


def _crash_once() -> None:
    path = os.environ.get(CRASH_ENV)
    if not path:
        return
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return  # another process already died here
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    os._exit(17)


_crash_once()
