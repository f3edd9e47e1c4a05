"""opsnb.checks.triage.notify: who to tell, by the highest severity concluded so far."""

from __future__ import annotations

from opsnb.checks import findings
from opsnb.checks.triage import notify


def test_p1_goes_to_incidents_and_the_status_page(capsys):
    findings.conclude("fail", "Error rate 20 % over 5 minutes", severity="P1", check_id="triage.error-rate")
    findings.conclude("warn", "Slow", severity="P2", check_id="triage.other")
    text = notify.who_to_notify()
    assert "P1 High (major impact)" in text and "< 15 minutes" in text and "< 4 hours" in text
    assert "#incidents" in text and "status page" in text and "post-mortem" in text
    assert "#incidents" in capsys.readouterr().out


def test_nothing_wrong_notifies_nobody_but_says_what_could_not_be_checked():
    findings.conclude("pass", "Fine", check_id="triage.health")
    assert "Notify: nobody" in notify.who_to_notify()
    findings.conclude("inconclusive", "Could not check triage.logs", check_id="triage.logs")
    text = notify.who_to_notify()
    assert "Notify: nobody" in text and "Could not check: triage.logs" in text
