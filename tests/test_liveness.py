"""One answer to "does this process still run?" for the runner, the checks and the sandbox."""

from __future__ import annotations

import os
import subprocess

from opsnb.liveness import pid_alive


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert not pid_alive(proc.pid)
    assert not pid_alive(2**40)  # not a pid at all
    assert pid_alive(1)  # another user's process (init) counts as alive
