"""Stripe payments and webhooks: the runbook's "Issue: Stripe Payments Failing", one module per concern.

- :mod:`~opsnb.checks.payments.keys`: the Stripe key (its test/live mode) and the API client built from it;
- :mod:`~opsnb.checks.payments.route`: the app's webhook route answering an unsigned POST, and its clock;
- :mod:`~opsnb.checks.payments.signing`: a test event signed as Stripe signs, POSTed to the route;
- :mod:`~opsnb.checks.payments.logs`: the webhook route's requests in the app's logs;
- :mod:`~opsnb.checks.payments.events`: the Stripe side (webhook endpoints, undelivered events, declines);
- :mod:`~opsnb.checks.payments.orders`: the database side (orders stuck in "pending" and their PaymentIntents);
- :mod:`~opsnb.checks.payments.resend`: the mitigation (resend the undelivered events) and its re-check.

Secrets reach every check one way: the check gets the *name* of the environment variable (``*_env``) and
resolves it with :func:`opsnb.checks.secrets.secret`; values are only revealed to the SDK or the HMAC.
"""
