"""The session sandbox: planted trouble is really there, and switching each fault changes the shop."""

from __future__ import annotations

import gzip
import hashlib
import json
import stat
import subprocess
import time
from pathlib import Path

import boto3
import httpx
import psycopg
import pytest
import stripe

from opsnb.sandbox import manager, processes, state
from opsnb.sandbox import s3 as sandbox_s3
from opsnb.sandbox.stripe_api import sign_payload

ENV_KEYS = [
    "SANDBOX_DATABASE_URL",
    "SANDBOX_WRITER_DATABASE_URL",
    "SANDBOX_APP_DATABASE_URL",
    "SANDBOX_MAINT_DATABASE_URL",
    "SANDBOX_ADMIN_DATABASE_URL",
    "SANDBOX_PG_BINDIR",
    "SANDBOX_APP_URL",
    "SANDBOX_STRIPE_API_BASE",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "SANDBOX_VERCEL_API_BASE",
    "VERCEL_TOKEN",
    "SANDBOX_VERCEL_PROJECT",
    "SANDBOX_S3_ENDPOINT",
    "SANDBOX_S3_BUCKET",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "NEXTAUTH_URL",
    "NEXTAUTH_SECRET",
    "SANDBOX_SESSION_TOKEN",
    "SANDBOX_LOG_DIR",
]


@pytest.fixture(scope="module")
def sc(sandbox) -> stripe.StripeClient:
    return stripe.StripeClient(
        sandbox["STRIPE_SECRET_KEY"], base_addresses={"api": sandbox["SANDBOX_STRIPE_API_BASE"]}
    )


def _vercel(sandbox, method: str, path: str) -> httpx.Response:
    return httpx.request(
        method,
        sandbox["SANDBOX_VERCEL_API_BASE"] + path,
        headers={"Authorization": f"Bearer {sandbox['VERCEL_TOKEN']}"},
    )


def _query(url: str, sql: str, *args):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()


def test_env_file_and_roles(sandbox) -> None:
    assert stat.S_IMODE(sandbox.env_file.stat().st_mode) == 0o600
    assert [k for k in ENV_KEYS if not sandbox.env.get(k)] == []
    assert sandbox.up_seconds < 30
    assert sandbox["STRIPE_SECRET_KEY"].startswith("sk_test_") and sandbox[
        "STRIPE_WEBHOOK_SECRET"
    ].startswith("whsec_")
    roles = {
        r[0]: (r[1], r[2])
        for r in _query(
            sandbox.admin_url,
            "SELECT rolname, rolsuper, rolcreatedb FROM pg_roles "
            "WHERE rolname IN ('shop_app', 'opsnb_maint', 'opsnb_admin')",
        )
    }
    assert roles["shop_app"] == (False, False) and roles["opsnb_maint"] == (False, True)
    assert roles["opsnb_admin"][0] is True
    # the app role reads everyone's statements and activity; the maintenance role reads the shop
    assert _query(sandbox.database_url, "SELECT pg_has_role('pg_read_all_stats', 'MEMBER')")[0][0]
    assert _query(sandbox["SANDBOX_MAINT_DATABASE_URL"], 'SELECT count(*) FROM "Order"')[0][0] > sandbox.scale
    owner = _query(sandbox.admin_url, "SELECT tableowner FROM pg_tables WHERE tablename = 'Order'")[0][0]
    assert owner == "shop_app"
    assert Path(sandbox["SANDBOX_PG_BINDIR"], "pg_restore").exists()


def test_schema_and_data(sandbox) -> None:
    tables = {
        r[0]
        for r in _query(sandbox.database_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert {
        "User",
        "Account",
        "Session",
        "Product",
        "Order",
        "OrderItem",
        "AuditLog",
        "OrderArchive",
    } <= tables
    old, total = _query(
        sandbox.database_url,
        'SELECT count(*) FILTER (WHERE "createdAt" < now() - interval \'2 years\'), count(*) FROM "Order"',
    )[0]
    assert total == sandbox.scale + 23 and old > 500
    linked = _query(
        sandbox.database_url,
        'SELECT count(*) FROM (SELECT "userId" FROM "Account" GROUP BY 1 '
        'HAVING count(DISTINCT "provider") = 2) s',
    )[0][0]
    assert linked >= 2


def test_health_session_and_csrf(sandbox) -> None:
    r = httpx.get(sandbox.app_url + "/api/health")
    assert r.status_code == 200 and r.json() == {"status": "ok", "database": "ok"}
    assert httpx.get(sandbox.app_url + "/api/auth/session").json() == {}
    cookies = {"next-auth.session-token": sandbox["SANDBOX_SESSION_TOKEN"]}
    session = httpx.get(sandbox.app_url + "/api/auth/session", cookies=cookies).json()
    assert session["user"]["email"].endswith("@example.com") and session["expires"].endswith("Z")
    # an unreadable token: see test_nextauth.py (in-process, so no JWT_SESSION_ERROR lands in the shared drain)
    r = httpx.get(sandbox.app_url + "/api/auth/csrf")
    header = [
        v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("next-auth.csrf-token=")
    ][0]
    assert "HttpOnly" in header and "Path=/" in header and "samesite=lax" in header.lower()
    assert r.json()["csrfToken"] == header.split("=", 1)[1].split("|")[0]


def test_nextauth_url_fault(sandbox) -> None:
    providers = httpx.get(sandbox.app_url + "/api/auth/providers").json()
    assert providers["google"]["callbackUrl"] == "http://localhost:3000/api/auth/callback/google"
    assert sandbox["NEXTAUTH_URL"] == "http://localhost:3000"
    with sandbox.faults(nextauth_url=False):
        providers = httpx.get(sandbox.app_url + "/api/auth/providers").json()
        assert providers["google"]["callbackUrl"] == sandbox.app_url + "/api/auth/callback/google"
        assert sandbox["NEXTAUTH_URL"] == sandbox.app_url
    assert sandbox["NEXTAUTH_URL"] == "http://localhost:3000"


def test_500_burst_and_rollback(sandbox) -> None:
    def burst(n: int = 10) -> list[int]:
        return [httpx.post(sandbox.app_url + "/api/checkout").status_code for _ in range(n)]

    codes = burst()
    assert codes.count(500) == 3 and codes.count(201) == 7
    deployments = _vercel(sandbox, "GET", "/v6/deployments?limit=10").json()["deployments"]
    assert [d["readyState"] for d in deployments] == ["READY"] * len(deployments)
    latest, previous = deployments[0], deployments[1]
    age_min = (time.time() * 1000 - latest["created"]) / 60000
    assert 15 < age_min < 30
    # the live 500s are in the log drain, tied to the bad deployment
    lines = [
        json.loads(x)
        for f in Path(sandbox["SANDBOX_LOG_DIR"]).glob("*.ndjson")
        for x in f.read_text().splitlines()
    ]
    errors = [x for x in lines if x["statusCode"] in (500, -1)]
    assert errors and {x["deploymentId"] for x in errors} == {latest["uid"]}
    assert any(x["statusCode"] == -1 for x in errors)
    assert all(x["timestamp"] >= latest["created"] for x in errors)
    assert "reading 'price'" in errors[0]["message"] or errors[0]["statusCode"] == -1
    # roll back: the burst ends
    assert _vercel(sandbox, "GET", "/v6/deployments").status_code == 200
    assert httpx.get(sandbox["SANDBOX_VERCEL_API_BASE"] + "/v6/deployments").status_code == 401
    r = _vercel(
        sandbox, "POST", f"/v1/projects/{sandbox['SANDBOX_VERCEL_PROJECT']}/rollback/{previous['uid']}"
    )
    assert r.status_code == 201
    assert burst().count(500) == 0
    project = _vercel(sandbox, "GET", f"/v9/projects/{sandbox['SANDBOX_VERCEL_PROJECT']}").json()
    assert project["targets"]["production"]["uid"] == previous["uid"]
    # switching the fault on again redeploys the bad build; off ends it without a rollback
    sandbox.set_fault("500-burst", True)
    assert burst().count(500) == 3
    with sandbox.faults(**{"500_burst": False}):
        assert burst().count(500) == 0
    envs = _vercel(sandbox, "GET", f"/v9/projects/{sandbox['SANDBOX_VERCEL_PROJECT']}/env").json()["envs"]
    assert {"DATABASE_URL", "NEXTAUTH_URL", "STRIPE_WEBHOOK_SECRET"} <= {e["key"] for e in envs}
    assert all(e["value"] == "" for e in envs if e["type"] == "encrypted")


def test_missing_index_fault(sandbox) -> None:
    top = _query(
        sandbox.database_url,
        # the top query of the shop's workload; other tests' utility statements (CREATE DATABASE …) don't count
        "SELECT query, calls FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'shop')"
        " AND query ~* '^select' ORDER BY total_exec_time DESC LIMIT 1",
    )
    assert 'WHERE "userId" = $1' in top[0][0] and top[0][1] >= 300
    index_sql = "SELECT count(*) FROM pg_indexes WHERE indexname = 'Order_userId_idx'"
    assert _query(sandbox.database_url, index_sql)[0][0] == 0
    with sandbox.faults(missing_index=False):
        assert _query(sandbox.database_url, index_sql)[0][0] == 1
        plan = _query(sandbox.database_url, 'EXPLAIN SELECT * FROM "Order" WHERE "userId" = \'usr_000001\'')
        assert "Order_userId_idx" in " ".join(r[0] for r in plan)
    assert _query(sandbox.database_url, index_sql)[0][0] == 0


def test_idle_in_transaction_fault(sandbox) -> None:
    sql = (
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'shop-worker' "
        "AND state = 'idle in transaction'"
    )
    assert _query(sandbox.database_url, sql)[0][0] == 1
    with sandbox.faults(idle_in_transaction=False):
        assert processes.wait_for(lambda: _query(sandbox.database_url, sql)[0][0] == 0, 5)
    assert _query(sandbox.database_url, sql)[0][0] == 1


def _stuck(sandbox) -> int:
    planted = state.load(state.Paths())["facts"]["planted"]
    ids = [o["id"] for o in planted if o["kind"] == "stuck"]
    return _query(
        sandbox.database_url, "SELECT count(*) FROM \"Order\" WHERE status = 'pending' AND id = ANY(%s)", ids
    )[0][0]


def test_stuck_orders_and_resend(sandbox, sc: stripe.StripeClient) -> None:
    assert _stuck(sandbox) == 12
    undelivered = sc.v1.events.list(
        {"type": "payment_intent.succeeded", "delivery_success": False, "limit": 100}
    )
    assert len(undelivered.data) == 12 and all(e.pending_webhooks == 1 for e in undelivered.data)
    pi = sc.v1.payment_intents.retrieve(undelivered.data[0].data.object.id)
    assert pi.status == "succeeded"
    endpoint = sc.v1.webhook_endpoints.list().data[0]
    assert endpoint.status == "enabled" and endpoint.url == sandbox.app_url + "/api/webhooks/stripe"
    assert "payment_intent.succeeded" in endpoint.enabled_events
    declines = {
        p.last_payment_error.decline_code
        for p in sc.v1.payment_intents.list({"limit": 100}).data
        if p.last_payment_error
    }
    assert {"generic_decline", "insufficient_funds", "authentication_required"} <= declines
    since = int(time.time()) - 3600
    assert (
        len(
            sc.v1.events.list(
                {"created": {"gte": since}, "types": ["payment_intent.succeeded"], "limit": 100}
            ).data
        )
        == 12
    )

    def resend(evt_id: str) -> dict:
        r = httpx.post(
            f"{sandbox['SANDBOX_STRIPE_API_BASE']}/v1/events/{evt_id}/retry",
            data={"webhook_endpoint": endpoint.id},
            headers={"Authorization": f"Bearer {sandbox['STRIPE_SECRET_KEY']}"},
        )
        assert r.status_code == 200
        return r.json()

    # with the app still on the old secret, a resend fails again
    assert resend(undelivered.data[0].id)["pending_webhooks"] == 1 and _stuck(sandbox) == 12
    with sandbox.faults(stuck_orders=False):
        for evt in undelivered.data:
            assert resend(evt.id)["pending_webhooks"] == 0
        assert _stuck(sandbox) == 0
        assert sc.v1.events.list({"delivery_success": False, "type": "payment_intent.succeeded"}).data == []
    # fault on again: planted once more
    assert _stuck(sandbox) == 12
    assert (
        len(sc.v1.events.list({"type": "payment_intent.*", "delivery_success": False, "limit": 100}).data)
        == 12
    )


def test_signed_webhook_round_trip(sandbox, sc: stripe.StripeClient) -> None:
    hook = sandbox.app_url + "/api/webhooks/stripe"
    r = httpx.post(hook, content=b"{}", headers={"Stripe-Signature": "garbage"})
    assert r.status_code == 400 and "Unable to extract timestamp and signatures from header" in r.text
    payload = json.dumps(
        {
            "id": "evt_test",
            "object": "event",
            "type": "payment_intent.succeeded",
            "data": {"object": {"id": "pi_unknown", "object": "payment_intent"}},
        }
    )
    secret_now = manager.read_env()["STRIPE_WEBHOOK_SECRET"]
    old_secret = state.load(state.Paths())["secrets"]["webhook_secret_old"]
    stale = sign_payload(payload, old_secret, timestamp=int(time.time()) - 3600)
    r = httpx.post(hook, content=payload, headers={"Stripe-Signature": stale})
    assert r.status_code == 400 and "Timestamp outside the tolerance zone" in r.text
    assert secret_now != old_secret
    good = {
        "Stripe-Signature": sign_payload(payload, sandbox["STRIPE_WEBHOOK_SECRET"]),
        "Content-Type": "application/json",
    }
    # stuck-orders on: the app verifies with the old secret, so the Dashboard's secret is rejected
    r = httpx.post(hook, content=payload, headers=good)
    assert r.status_code == 400 and "No signatures found matching the expected signature" in r.text
    with sandbox.faults(stuck_orders=False, **{"500_burst": False}):
        # the SDK itself accepts what the stand-in signs
        assert (
            stripe.Webhook.construct_event(
                payload, good["Stripe-Signature"], sandbox["STRIPE_WEBHOOK_SECRET"]
            ).id
            == "evt_test"
        )
        assert httpx.post(hook, content=payload, headers=good).status_code == 200
        order = httpx.post(
            sandbox.app_url + "/api/checkout", json={"items": [{"productId": "prod_0003", "quantity": 2}]}
        )
        assert order.status_code == 201
        body = order.json()
        assert sc.v1.payment_intents.retrieve(body["paymentIntentId"]).status == "requires_payment_method"
        confirmed = sc.v1.payment_intents.confirm(body["paymentIntentId"])  # Stripe delivers the signed event
        assert confirmed.status == "succeeded"
        status = _query(sandbox.database_url, 'SELECT status FROM "Order" WHERE id = %s', body["orderId"])[0][
            0
        ]
        assert status == "paid"
        evt = sc.v1.events.list({"type": "payment_intent.succeeded", "limit": 1}).data[0]
        assert evt.data.object.id == body["paymentIntentId"] and evt.pending_webhooks == 0


def test_s3_backups(sandbox, tmp_path: Path) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=sandbox["SANDBOX_S3_ENDPOINT"],
        region_name=sandbox["AWS_DEFAULT_REGION"],
        aws_access_key_id=sandbox["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=sandbox["AWS_SECRET_ACCESS_KEY"],
    )
    # only the sandbox's own prefixes: runbook tests may have uploaded backups of their own beside them;
    # the backups as taken, without the planted backup faults (tests/runbooks/test_planted_faults.py)
    with sandbox.faults(backup_truncated=False, backups_stopped=False):
        _check_backups(sandbox, s3, tmp_path)


def _check_backups(sandbox, s3, tmp_path: Path) -> None:
    """Every sandbox backup object carries its checksum; the nightly ones restore, the broken one does not."""
    listed = s3.list_objects_v2(Bucket=sandbox["SANDBOX_S3_BUCKET"])["Contents"]
    keys = sorted(o["Key"] for o in listed if o["Key"].startswith(("nightly/shop-", "broken/shop-")))
    nights = 1 + sandbox_s3.HISTORY_NIGHTS  # tonight's pair and the earlier nights' copies
    assert [k.split("-")[0] for k in keys] == ["broken/shop"] + ["nightly/shop"] * 2 * nights
    pg_restore = Path(sandbox["SANDBOX_PG_BINDIR"], "pg_restore")
    for key in keys:
        obj = s3.get_object(Bucket=sandbox["SANDBOX_S3_BUCKET"], Key=key)
        data = obj["Body"].read()
        assert obj["Metadata"] == {"sha256": hashlib.sha256(data).hexdigest(), "size": str(len(data))}
        path = tmp_path / key.replace("/", "_")
        path.write_bytes(data)
        if key.endswith(".sql.gz"):
            assert b'CREATE TABLE public."Order"' in gzip.decompress(data)
            continue
        listing = subprocess.run([str(pg_restore), "--list", str(path)], capture_output=True, text=True)
        if key.startswith("nightly/"):
            assert listing.returncode == 0 and "TABLE DATA public Order shop_app" in listing.stdout
        else:
            full = subprocess.run(
                [str(pg_restore), "-f", "/dev/null", str(path)], capture_output=True, text=True
            )
            assert full.returncode != 0 and full.stderr


def test_all_faults_off_is_healthy(sandbox, sc: stripe.StripeClient) -> None:
    names = {f.replace("-", "_"): False for f in manager.FAULTS}
    with sandbox.faults(**names):
        codes = [httpx.get(sandbox.app_url + "/api/products").status_code for _ in range(10)]
        assert codes == [200] * 10
        assert all(r["health"] in ("healthy",) for r in manager.status())
        providers = httpx.get(sandbox.app_url + "/api/auth/providers").json()
        assert providers["google"]["callbackUrl"].startswith(sandbox.app_url)
        assert (
            _query(
                sandbox.database_url,
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'",
            )[0][0]
            == 0
        )
