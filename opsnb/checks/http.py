"""HTTP for the checks: probes that record method, URL, status, latency and a short body, and the base of the
vendors' REST clients (a Bearer token from a Secret, explicit timeouts, one-line errors)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import httpx

from opsnb.checks.secrets import Secret
from opsnb.errors import OpsnbError

if TYPE_CHECKING:
    import pandas as pd

BODY_CHARS = 500  # enough to read an error page, short enough for a table


@dataclass
class Probe:
    """One HTTP call and what came back."""

    method: str
    url: str
    status: int | None
    latency_ms: float
    ok: bool
    error: str = ""
    body: str = ""

    def json(self) -> Any:
        """The body parsed as JSON (None when it is not JSON)."""
        import json

        try:
            return json.loads(self.body)
        except ValueError:
            return None


class Prober:
    """An httpx client with explicit timeouts that keeps every probe it made."""

    def __init__(
        self, timeout_s: float = 10.0, connect_timeout_s: float = 3.0, headers: dict[str, str] | None = None
    ) -> None:
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            headers=headers or {},
            follow_redirects=False,
        )
        self.probes: list[Probe] = []
        self.responses: list[httpx.Response | None] = []

    def probe(
        self, url: str, method: str = "GET", expect: int | tuple[int, ...] = 200, **kwargs: Any
    ) -> Probe:
        """Call ``url``; ``ok`` means the status is one of ``expect``. Never raises on network errors."""
        expected = (expect,) if isinstance(expect, int) else tuple(expect)
        start = time.perf_counter()
        response = None
        try:
            response = self.client.request(method, url, **kwargs)
            status, error, body = response.status_code, "", response.text[: BODY_CHARS * 4]
        except httpx.TimeoutException:
            status, error, body = None, f"timed out after {self.client.timeout.read}s", ""
        except httpx.HTTPError as exc:
            status, error, body = None, f"{type(exc).__name__}: {exc}", ""
        latency = (time.perf_counter() - start) * 1000
        found = Probe(method, url, status, round(latency, 1), status in expected, error, body[:BODY_CHARS])
        self.probes.append(found)
        self.responses.append(response)
        return found

    def table(self) -> pd.DataFrame:
        """Every probe so far as a DataFrame."""
        import pandas as pd

        return pd.DataFrame([asdict(p) for p in self.probes])

    def close(self) -> None:
        """Close the underlying connection pool."""
        self.client.close()

    def __enter__(self) -> Prober:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class APIError(OpsnbError):
    """A vendor API call failed (one line: method, path, status, the vendor's message; never the token).

    An opsnb error, so a check that lets it propagate concludes ``inconclusive`` (it could not look).
    """


class BearerAPI:
    """Base of the small REST clients (Vercel, Sentry): a Bearer token from a Secret, explicit timeouts.

    The token goes only into the Authorization header; ``api_base`` is a parameter so a stand-in and the
    real service are the same code path.
    """

    def __init__(
        self,
        token: Secret,
        api_base: str,
        timeout_s: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self._client = httpx.Client(
            base_url=self.api_base,
            headers={"Authorization": f"Bearer {token.reveal()}", "User-Agent": "opsnb"},
            timeout=httpx.Timeout(timeout_s, connect=5.0),
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> BearerAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
