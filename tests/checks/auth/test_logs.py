"""opsnb.checks.auth.logs: NextAuth error codes in real log-drain files written here, counted in a window,
judged as one conclusion, plotted."""

from __future__ import annotations

import json
import time

import pytest

from opsnb.checks import findings
from opsnb.checks.auth import logs


def only() -> findings.Conclusion:
    [conclusion] = findings.all_conclusions()
    return conclusion


def write_drain(path, lines: list[tuple[float, str, str]]) -> None:
    """Vercel log-drain NDJSON: one object per (unix time, message, path)."""
    with open(path, "w") as handle:
        for ts, message, route in lines:
            record = {
                "id": f"l{ts}",
                "timestamp": int(ts * 1000),
                "level": "error",
                "message": message,
                "path": route,
            }
            handle.write(json.dumps(record) + "\n")


@pytest.fixture
def drain(tmp_path):
    """A drain folder: an old JWT_SESSION_ERROR, two OAuth callback errors, a not-linked page, an unknown code."""
    now = time.time()
    write_drain(
        tmp_path / "drain.ndjson",
        [
            (now - 7200, "[next-auth][error][JWT_SESSION_ERROR] old", "/api/auth/session"),
            (
                now - 600,
                "[next-auth][error][OAUTH_CALLBACK_ERROR] redirect_uri_mismatch",
                "/api/auth/callback/google",
            ),
            (
                now - 300,
                "[next-auth][error][OAUTH_CALLBACK_ERROR] redirect_uri_mismatch",
                "/api/auth/callback/google",
            ),
            (now - 200, "", "/api/auth/signin?error=OAuthAccountNotLinked"),
            (now - 100, "[next-auth][error][SOMETHING_NEW]", "/api/auth/session"),
        ],
    )
    return tmp_path, now


def test_error_codes_in_messages() -> None:
    assert logs.error_codes_in(
        "[next-auth][error][OAUTH_CALLBACK_ERROR] \nhttps://next-auth.js.org/errors"
    ) == ["OAUTH_CALLBACK_ERROR"]
    assert logs.error_codes_in("[auth][error] JWTSessionError: Read more") == ["JWTSessionError"]
    assert logs.error_codes_in("/api/auth/signin?error=OAuthAccountNotLinked") == ["OAuthAccountNotLinked"]
    assert logs.error_codes_in("GET /api/products 200") == [] and logs.error_codes_in(None) == []


def test_catalogue_covers_the_runbook_codes() -> None:
    for code in ("OAUTH_CALLBACK_ERROR", "CLIENT_FETCH_ERROR", "JWT_SESSION_ERROR", "OAuthAccountNotLinked"):
        entry = logs.ERROR_CODES[code]
        assert entry.explanation and entry.fix and entry.severity in ("P1", "P2", "P3")


def test_codes_in_the_window_make_one_conclusion_set_by_the_worst(drain) -> None:
    folder, _ = drain
    seen = logs.read_error_events(str(folder), window_minutes=60)
    assert (seen.lines, seen.scope, seen.error) == (4, "in the last 60 min", "")
    summary = logs.check_error_codes(seen)
    assert list(summary["code"]) == ["OAUTH_CALLBACK_ERROR", "OAuthAccountNotLinked", "SOMETHING_NEW"]
    assert list(summary["count"]) == [2, 1, 1] and list(summary["severity"]) == ["P1", "P3", "P3"]
    found = only()
    assert (found.check, found.status, found.severity) == ("auth.error-codes", "fail", "P1")
    assert (
        found.title
        == "NextAuth logged OAUTH_CALLBACK_ERROR ×2, OAuthAccountNotLinked ×1, SOMETHING_NEW ×1 in the last 60 min"
    )
    assert "Fix: cookies SameSite=Lax" in found.detail


def test_only_single_user_codes_warn(tmp_path) -> None:
    write_drain(
        tmp_path / "drain.ndjson", [(time.time() - 60, "", "/api/auth/signin?error=OAuthAccountNotLinked")]
    )
    logs.check_error_codes(logs.read_error_events(str(tmp_path)))
    assert (only().status, only().severity) == ("warn", "P3")


def test_since_a_fix_counts_only_what_came_after(drain) -> None:
    folder, now = drain
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 150))
    seen = logs.read_error_events(str(folder), since=since)
    assert seen.scope.startswith("since ") and seen.scope.endswith(" UTC")
    assert list(logs.check_error_codes(seen)["code"]) == ["SOMETHING_NEW"]


def test_no_error_code_is_a_pass(tmp_path) -> None:
    write_drain(tmp_path / "drain.ndjson", [(time.time() - 60, "GET /api/products", "/api/products")])
    seen = logs.read_error_events(str(tmp_path))
    assert logs.check_error_codes(seen).empty
    assert (only().status, only().title) == ("pass", "No NextAuth error code in the logs in the last 60 min")
    assert logs.plot_error_codes(seen) is None


def test_a_quiet_log_is_not_a_clean_one(drain) -> None:
    folder, now = drain
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 60))  # after every line
    logs.check_error_codes(logs.read_error_events(str(folder), since=since))
    assert (only().status, only().essential) == ("inconclusive", True)
    assert "no log line since" in only().detail
    assert findings.verdict() == "WARN"


@pytest.mark.parametrize("source", ["/nonexistent/opsnb-drain", "https://logs.example.com/drain"])
def test_unreadable_logs_are_an_essential_blind_spot(source: str) -> None:
    seen = logs.read_error_events(source)
    assert seen.error and seen.events.empty
    assert logs.check_error_codes(seen) is None
    assert only().status == "inconclusive" and f"could not read the logs at {source}" in only().detail
    assert findings.verdict() == "WARN"


def test_plot_stacks_codes_over_time(drain) -> None:
    import matplotlib

    matplotlib.use("agg")
    from matplotlib.figure import Figure

    folder, _ = drain
    seen = logs.read_error_events(str(folder), window_minutes=180)
    figure = logs.plot_error_codes(seen, bucket="30min")
    assert isinstance(figure, Figure)
    ax = figure.axes[0]
    assert ax.get_title() == "NextAuth error codes in the last 180 min"
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {
        "JWT_SESSION_ERROR",
        "OAUTH_CALLBACK_ERROR",
        "OAuthAccountNotLinked",
        "SOMETHING_NEW",
    }
    assert logs.plot_error_codes(None) is None


def test_error_codes_step_is_skipped_without_a_log_source(capsys):
    from opsnb.checks import findings
    from opsnb.checks.auth import logs as auth_logs

    findings.clear()
    assert auth_logs.error_codes_step("", 60) is None
    assert "log step is skipped" in capsys.readouterr().out and findings.all_conclusions() == []
