"""Fixtures of the auth checks' tests: the NextAuth-like test app, served over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from checks.asgi_server import serving
from checks.auth.auth_app import AuthApp


@pytest.fixture
def app() -> Iterator[tuple[AuthApp, str]]:
    """An Auth.js v5 app on http (change its fields to break it) and its base URL."""
    auth_app = AuthApp()
    with serving(auth_app.asgi()) as url:
        yield auth_app, url
