"""opsnb.checks.auth.facts: the small helpers every auth module shares."""

from __future__ import annotations

import pytest

from opsnb.checks.auth import facts


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("[::1]", True),
        ("0.0.0.0", True),
        ("shop.localhost", True),
        ("shop.example.com", False),
        ("10.0.0.1", False),
    ],
)
def test_is_local_host(host: str, local: bool) -> None:
    assert facts.is_local_host(host) is local


def test_strip_cookie_prefix() -> None:
    assert facts.strip_cookie_prefix("__Secure-next-auth.session-token") == "next-auth.session-token"
    assert facts.strip_cookie_prefix("__Host-authjs.csrf-token") == "authjs.csrf-token"
    assert facts.strip_cookie_prefix("theme") == "theme"


def test_mask_email() -> None:
    assert facts.mask_email("jane.doe@example.com") == "j***@example.com"
    assert facts.mask_email("") is None and facts.mask_email(None) is None
    assert facts.mask_email("nobody") == "n***"


def test_listing() -> None:
    assert facts.listing([]) == ""
    assert facts.listing(["a"]) == "a"
    assert facts.listing(["a", "b"]) == "a and b"
    assert facts.listing(["a", "b", "c"]) == "a, b and c"
