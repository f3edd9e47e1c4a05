"""Whether a process still runs on this host: how the runner, the checks and the sandbox tell leftovers of a
killed run (work folders, scratch databases, stand-ins) from things a live process still uses."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True when process ``pid`` exists on this host (another user's process counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, it is just not ours to signal
        return True
    except (OverflowError, OSError, ValueError):  # not a pid at all
        return False
    return True
