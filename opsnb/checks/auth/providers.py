"""Runbook Investigation 3, "Check Google OAuth console", and the common cause "Google OAuth misconfigured":
the providers the app offers (``/api/auth/providers``) and the callback URL each will send to its provider.

Checks ``auth.providers`` (the required providers are offered) and ``auth.redirect-uris`` (each provider's
``callbackUrl`` is one of the redirect URIs the runbook says to authorize: the domain and its www form).
A ``callbackUrl`` outside that list is the provider's ``redirect_uri_mismatch``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opsnb.checks.auth.facts import REACH_HINT, is_local_host, listing
from opsnb.checks.auth.probes import Answer, AuthAnswers, answer_to
from opsnb.checks.auth.verdicts import Verdict, failed, judge, passed, problems
from opsnb.checks.findings import CouldNotLook, check, conclude

if TYPE_CHECKING:
    import pandas as pd

OUTSIDE = "calls back outside this site's redirect URIs"  # redirect_uri_mismatch
COLUMNS = ["provider", "type", "callbackUrl", "expected (authorize these)", "verdict"]


def expected_redirect_uris(app_url: str, provider: str = "google") -> list[str]:
    """The runbook's authorized redirect URIs: the domain and its www form (only the domain for IPs/localhost)."""
    parts = urlsplit(app_url.rstrip("/"))
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    bare = host.removeprefix("www.")
    hosts = [f"[{bare}]" if ":" in bare else bare]  # an IPv6 literal keeps its brackets
    if not is_local_host(bare) and not re.fullmatch(r"[\d.]+", bare) and "." in bare:
        hosts.append(f"www.{bare}")
    return [f"{parts.scheme}://{h}{port}/api/auth/callback/{provider}" for h in hosts]


def provider_list(answer: Answer) -> dict[str, Any] | None:
    """The providers (id → {type, callbackUrl, …}) of an /api/auth/providers answer; None when it is not a
    JSON object."""
    try:
        body = answer.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def providers_table(
    providers: dict[str, Any], app_url: str, verdicts: Iterable[Verdict] = ()
) -> pd.DataFrame:
    """One row per provider: its type, the callbackUrl it sends, the URIs to authorize, and its verdict."""
    import pandas as pd

    by_provider = {v.subject.removeprefix("provider "): v for v in verdicts}
    rows = []
    for pid, info in sorted(providers.items()):
        info = info if isinstance(info, dict) else {}
        verdict = by_provider.get(pid)
        rows.append(
            {
                "provider": pid,
                "type": info.get("type"),
                "callbackUrl": info.get("callbackUrl"),
                "expected (authorize these)": ", ".join(expected_redirect_uris(app_url, pid)),
                "verdict": None if verdict is None else ("PASS" if verdict.passed else verdict.severity),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


@check("auth.providers", hint=REACH_HINT)
def check_providers(answers: AuthAnswers, required: Iterable[str] = ("google",)) -> pd.DataFrame:
    """/api/auth/providers lists every ``required`` provider (Google for the runbook)."""
    answer = answer_to(answers, "providers")
    providers = provider_list(answer)
    if providers is None:
        return conclude(
            "fail",
            f"{answer.path} answers no provider list",
            severity="P1",
            detail="the body is not a JSON object of providers: the auth route is broken or misrouted.",
            evidence=answers.table(),
        )
    evidence = providers_table(providers, answers.app_url)
    offered = sorted(providers)
    missing = [p for p in required if p not in providers]
    if missing:
        return conclude(
            "fail",
            f"The app offers no {listing(missing)} provider (it offers: {', '.join(offered) or 'none'})",
            severity="P1",
            detail="check AUTH_<PROVIDER>_ID/SECRET (v5) or the providers list of the NextAuth options (v4), "
            "and redeploy.",
            evidence=evidence,
        )
    wanted = listing(list(required))
    title = (
        f"The app offers the {wanted} provider" if wanted else f"The app offers {len(offered)} provider(s)"
    )
    return conclude("pass", title, detail=f"offered: {', '.join(offered) or 'none'}", evidence=evidence)


def redirect_uri_verdicts(providers: dict[str, Any], app_url: str) -> list[Verdict]:
    """Per provider: its callbackUrl is one of the expected redirect URIs (P1 redirect_uri_mismatch if not)."""
    verdicts = []
    rule = "callbackUrl is an expected redirect URI"
    for pid, info in sorted(providers.items()):
        callback = info.get("callbackUrl") if isinstance(info, dict) else None
        expected = expected_redirect_uris(app_url, pid)
        subject = f"provider {pid}"
        if not callback:
            verdicts.append(
                failed(
                    subject,
                    rule,
                    "has no callbackUrl",
                    "P2",
                    f"{subject} has no callbackUrl in /api/auth/providers.",
                )
            )
        elif callback in expected:
            verdicts.append(passed(subject, rule, f"calls back to {callback}"))
        else:
            verdicts.append(
                failed(
                    subject,
                    rule,
                    OUTSIDE,
                    "P1",
                    f"{subject} sends callbackUrl {callback}, not one of {', '.join(expected)}: the OAuth provider "
                    "answers redirect_uri_mismatch. Fix NEXTAUTH_URL/AUTH_URL, and list exactly these URIs in "
                    "Google Console > Credentials > OAuth 2.0 Client > Authorized redirect URIs.",
                )
            )
    return verdicts


def _redirect_title(bad: list[Verdict]) -> str:
    """'google and github call back outside this site's redirect URIs; apple has no callbackUrl'."""
    outside = [v.subject.removeprefix("provider ") for v in bad if v.finding == OUTSIDE]
    missing = [v.subject.removeprefix("provider ") for v in bad if v.finding != OUTSIDE]
    parts = []
    if outside:
        parts.append(
            f"{listing(outside)} call{'s' if len(outside) == 1 else ''} back outside this site's redirect URIs"
        )
    if missing:
        parts.append(f"{listing(missing)} {'has' if len(missing) == 1 else 'have'} no callbackUrl")
    return "; ".join(parts)


@check("auth.redirect-uris", hint=REACH_HINT)
def check_redirect_uris(answers: AuthAnswers) -> pd.DataFrame:
    """Google OAuth misconfigured: every provider's callbackUrl is one of the redirect URIs to authorize."""
    answer = answer_to(answers, "providers")
    providers = provider_list(answer)
    if not providers:
        raise CouldNotLook(
            f"{answer.path} lists no provider to read a callbackUrl from (see auth.providers)", REACH_HINT
        )
    verdicts = redirect_uri_verdicts(providers, answers.app_url)
    found = judge(verdicts, "Every provider calls back to this site's redirect URIs")
    if found.status != "pass":
        found = replace(found, title=_redirect_title(problems(verdicts)))
    evidence = providers_table(providers, answers.app_url, verdicts)
    return found.conclude(evidence)
