"""NextAuth v4 / Auth.js v5: the runbook's "Issue: Authentication Not Working", one module per concern.

- :mod:`~opsnb.checks.auth.logs`: Investigation 1, NextAuth's error codes in the app's logs, explained;
- :mod:`~opsnb.checks.auth.config`: Investigation 2 and "Wrong NEXTAUTH_URL": NEXTAUTH_URL and the secret, judged;
- :mod:`~opsnb.checks.auth.probes`: Investigation 4, the app's /api/auth endpoints, asked once for every check;
- :mod:`~opsnb.checks.auth.providers`: Investigation 3 and "Google OAuth misconfigured": providers, redirect URIs;
- :mod:`~opsnb.checks.auth.tokens`: session errors after a secret change, the session token decrypted;
- :mod:`~opsnb.checks.auth.cookies`: "Session cookie issues", the real Set-Cookie headers against the config;
- :mod:`~opsnb.checks.auth.database`: the Prisma adapter tables (sessions, accounts linked to several providers);
- :mod:`~opsnb.checks.auth.environment`, :mod:`~opsnb.checks.auth.facts`, :mod:`~opsnb.checks.auth.verdicts`:
  the variables read, NextAuth's names and limits, and rule verdicts made into one conclusion.

Notebooks import the modules. The names below are NextAuth's wire formats, read outside any check by the
sandbox's tests and the benchmark.
"""

from opsnb.checks.auth.cookies import cookie_rules, parse_set_cookie
from opsnb.checks.auth.logs import error_events, summarize_error_codes
from opsnb.checks.auth.tokens import token_header

__all__ = ["cookie_rules", "error_events", "parse_set_cookie", "summarize_error_codes", "token_header"]
