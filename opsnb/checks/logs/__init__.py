"""Request and app logs as one pandas DataFrame: the Vercel log-drain reader and the log time window.

- :mod:`~opsnb.checks.logs.frame`: the frame's columns, ``LogRead`` (what a read found) and the garbage counter;
- :mod:`~opsnb.checks.logs.reader`: ``read_logs`` over drain NDJSON files, ``.gz``, folders and the API sources
  ``vercel://PROJECT/DEPLOYMENT`` and ``sentry://ORG`` (their adapters live in opsnb.checks.clients);
- :mod:`~opsnb.checks.logs.window`: the one place that turns "since"/"the last N minutes" into UTC bounds and
  cuts a frame's ``timestamp`` column by them.
"""

from opsnb.checks.logs.frame import COLUMNS, LogRead
from opsnb.checks.logs.reader import read_logs

__all__ = ["COLUMNS", "LogRead", "read_logs"]
