"""The kernel side: what runbook notebooks import. One subpackage per area (postgres, auth, payments,
triage, backups, logs) plus clients/ for the vendors' APIs, and the contract every check follows
(findings), secrets by reference, gated actions and the run context."""

from opsnb.checks import display as _display

_display.install()  # every DataFrame a notebook shows goes through one formatter (see display.py)
