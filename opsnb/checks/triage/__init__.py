"""500 triage (operations-runbook.md, "P0 Response Checklist" and "Issue: Site Returns 500 Error").

One module per step of the runbook, in its order: ``health`` (the health endpoint and the routes users hit),
``deploys`` (what changed, and the rollback action), ``logs`` (reading the log window), ``error_rate`` (the
"High Error Rate" alert rule and where the errors started), ``signatures`` (errors grouped by message),
``crashes`` (crashed functions), ``sentry`` (Sentry's unresolved issues), ``database`` (can the app's database
be reached), ``exceptions`` (Cause 2: unhandled exceptions), ``env_vars`` (Cause 3: missing variables) and
``notify`` (who to tell). The notebook notebooks/500-triage.ipynb calls them in that order.
"""
