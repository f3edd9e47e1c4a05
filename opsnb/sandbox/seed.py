"""Roles, schema, deterministic shop data and the database side of the planted faults.

Bulk rows come from `generate_series` with a fixed `setseed`, so two sandboxes of the same scale hold the
same rows (timestamps are relative to `now()`). The handful of orders the faults are about ("planted"
orders of the last hour) are inserted from Python with their own fixed seed.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass
from importlib import resources

import psycopg
from psycopg import sql

APP_ROLE = "shop_app"
MAINT_ROLE = "opsnb_maint"
READER_ROLE = "opsnb_reader"  # what the runbooks read with: pg_read_all_data + pg_monitor, nothing else
SHOP_DB = "shop"
WORKER_APP_NAME = "shop-worker"
USER_ORDERS_QUERY = (
    'SELECT "id", "status", "total", "createdAt" FROM "Order" WHERE "userId" = %s ORDER BY "createdAt" DESC'
)
STUCK_ORDERS = 12
FAILED_PAYMENTS = 8
OPEN_CHECKOUTS = 3
ROTATION_MINUTES_AGO = 50
DECLINES = [
    ("card_declined", "generic_decline", "Your card was declined."),
    ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    (
        "authentication_required",
        "authentication_required",
        "Your card was declined. This transaction requires authentication.",
    ),
]


@dataclass
class PlantedOrder:
    """An order of the last hour that a fault is about, with its Stripe PaymentIntent."""

    id: str
    user_id: str
    total_cents: int
    payment_intent: str
    created: int  # unix seconds
    kind: str  # "stuck" | "failed" | "open"
    decline: int = -1  # index into DECLINES for kind "failed"

    def as_dict(self) -> dict:
        return asdict(self)


def _sql_file(name: str) -> str:
    return resources.files("opsnb.sandbox").joinpath(name).read_text()


def create_roles_and_db(
    admin_dsn: str, app_password: str, maint_password: str, stat_statements: bool = True
) -> None:
    """Create the application role, the maintenance role and the shop database (idempotent).

    `stat_statements=False`: the server has no pg_stat_statements (pgserver); the extension is not created."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        existing = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles")}
        for role, password, extra in (
            (APP_ROLE, app_password, sql.SQL("")),
            (MAINT_ROLE, maint_password, sql.SQL(" CREATEDB")),
        ):
            verb = sql.SQL("ALTER") if role in existing else sql.SQL("CREATE")
            conn.execute(
                sql.SQL("{} ROLE {} LOGIN PASSWORD {}{}").format(
                    verb, sql.Identifier(role), sql.Literal(password), extra
                )
            )
        conn.execute(sql.SQL("GRANT pg_read_all_stats TO {}").format(sql.Identifier(APP_ROLE)))
        if stat_statements:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (SHOP_DB,)).fetchone():
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(SHOP_DB), sql.Identifier(APP_ROLE)
                )
            )


def create_reader_role(admin_shop_dsn: str, password: str) -> None:
    """The runbooks' reader role on the shop database (see opsnb.checks.postgres.roles)."""
    from opsnb.checks.postgres.roles import reader_role_statements

    with psycopg.connect(admin_shop_dsn, autocommit=True) as conn:
        for stmt in reader_role_statements(READER_ROLE, password, SHOP_DB, app_role=APP_ROLE):
            conn.execute(stmt)


def drop_shop_db(admin_dsn: str) -> None:
    """Terminate the shop database's sessions and drop it."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (SHOP_DB,),
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(SHOP_DB)))


def _bulk_seed(conn: psycopg.Connection, orders: int) -> dict:
    users = max(40, orders // 25)
    products = 200
    params = {"orders": orders, "users": users, "products": products}
    conn.execute("SET max_parallel_workers_per_gather = 0")
    conn.execute("SELECT setseed(0.4242)")
    conn.execute(
        """
        INSERT INTO "Product" ("id", "tenantId", "name", "description", "price", "stock", "active",
                               "createdAt", "updatedAt")
        SELECT 'prod_' || lpad(g::text, 4, '0'),
               'tenant_' || (1 + g %% 5),
               (ARRAY['Classic','Organic','Deluxe','Compact','Vintage','Smart','Eco','Pro'])[1 + g %% 8]
                 || ' ' ||
               (ARRAY['Mug','Lamp','Backpack','Notebook','Candle','Speaker','Blanket','Bottle','Chair',
                      'Watch'])[1 + (g / 8) %% 10] || ' ' || g,
               'Sandbox product ' || g,
               round((5 + random() * 195)::numeric, 2),
               (random() * 500)::int,
               g %% 23 <> 0,
               now() - interval '1100 days' + g * interval '2 days',
               now() - (random() * 30) * interval '1 day'
        FROM generate_series(1, %(products)s) g
        """,
        params,
    )
    conn.execute(
        """
        INSERT INTO "User" ("id", "email", "name", "emailVerified", "image", "createdAt")
        SELECT 'usr_' || lpad(g::text, 6, '0'),
               lower(f) || '.' || lower(l) || g || '@example.com',
               f || ' ' || l,
               CASE WHEN g %% 10 <> 0 THEN ts + interval '3 minutes' END,
               CASE WHEN g %% 3 = 0 THEN 'https://lh3.googleusercontent.com/a/u' || g END,
               ts
        FROM (SELECT g,
                     (ARRAY['Ava','Ben','Chloe','Dan','Emma','Finn','Grace','Hugo','Isla','Jack','Kira',
                            'Liam'])[1 + g %% 12] AS f,
                     (ARRAY['Smith','Jones','Garcia','Muller','Rossi','Dubois','Kim','Silva','Novak',
                            'Berg'])[1 + (g / 12) %% 10] AS l,
                     now() - interval '1110 days' * random() AS ts
              FROM generate_series(1, %(users)s) g) s
        """,
        params,
    )
    # Every user signed in with Google; a few also linked GitHub with the same email.
    conn.execute(
        """
        INSERT INTO "Account" ("id", "userId", "type", "provider", "providerAccountId", "token_type",
                               "scope", "expires_at")
        SELECT 'acc_' || g || '_' || p, 'usr_' || lpad(g::text, 6, '0'), 'oauth', p,
               CASE p WHEN 'google' THEN (104857600000000000000 + g * 7919)::text ELSE (9000000 + g)::text END,
               'bearer',
               CASE p WHEN 'google' THEN 'openid email profile' ELSE 'read:user,user:email' END,
               extract(epoch FROM now())::int + 3600
        FROM generate_series(1, %(users)s) g
        CROSS JOIN LATERAL unnest(CASE WHEN g %% 97 = 7 THEN ARRAY['google','github']
                                       ELSE ARRAY['google'] END) p
        """,
        params,
    )
    conn.execute(
        """
        INSERT INTO "Session" ("id", "sessionToken", "userId", "expires")
        SELECT 'ses_' || g, md5('session' || g), 'usr_' || lpad((1 + g * 7 %% %(users)s)::text, 6, '0'),
               now() + (random() * 60 - 30) * interval '1 day'
        FROM generate_series(1, greatest(10, %(users)s / 4)) g
        """,
        params,
    )
    # Items first (they only depend on g), then orders with their totals from the items.
    conn.execute(
        """
        INSERT INTO "OrderItem" ("id", "orderId", "productId", "quantity", "price")
        SELECT 'item_' || s.g || '_' || s.k, 'ord_' || lpad(s.g::text, 7, '0'), p."id", s.q, p."price"
        FROM (SELECT g, k, 1 + floor(random() * %(products)s)::int AS pn, 1 + floor(random() * 3)::int AS q
              FROM generate_series(1, %(orders)s) g, generate_series(1, 1 + g %% 3) k) s
        JOIN "Product" p ON p."id" = 'prod_' || lpad(s.pn::text, 4, '0')
        """,
        params,
    )
    # createdAt: skewed towards recent (a growing shop) over ~3 years, never in the last hour (the
    # planted orders own it); about 1 in 9 orders is older than 2 years (archive candidates).
    conn.execute(
        """
        INSERT INTO "Order" ("id", "userId", "status", "total", "stripePaymentIntentId", "createdAt",
                             "updatedAt")
        SELECT 'ord_' || lpad(s.g::text, 7, '0'),
               'usr_' || lpad(s.u::text, 6, '0'),
               CASE WHEN s.r < 0.04 THEN 'cancelled'
                    WHEN s.r < 0.06 THEN 'refunded'
                    WHEN s.ts > now() - interval '1 day' THEN 'paid'
                    WHEN s.ts > now() - interval '7 days' THEN 'shipped'
                    ELSE 'delivered' END,
               t.total,
               'pi_3' || substr(md5('pi' || s.g), 1, 21),
               s.ts,
               s.ts + interval '1 minute'
        FROM (SELECT g, 1 + floor(random() * %(users)s)::int AS u, random() AS r,
                     now() - interval '1 hour' - interval '1095 days' * (1 - sqrt(random())) AS ts
              FROM generate_series(1, %(orders)s) g) s
        JOIN (SELECT "orderId", sum("price" * "quantity") AS total FROM "OrderItem" GROUP BY 1) t
          ON t."orderId" = 'ord_' || lpad(s.g::text, 7, '0')
        """,
        params,
    )
    conn.execute(
        """
        INSERT INTO "AuditLog" ("id", "userId", "action", "entity", "entityId", "metadata", "ipAddress",
                                "timestamp")
        SELECT 'log_' || g,
               'usr_' || lpad((1 + floor(random() * %(users)s))::int::text, 6, '0'),
               a.action, a.entity, a.entity || '_' || g,
               jsonb_build_object('source', 'web'),
               '203.0.113.' || (1 + g %% 250),
               now() - interval '90 days' * random()
        FROM generate_series(1, greatest(200, %(orders)s / 5)) g
        CROSS JOIN LATERAL (SELECT (ARRAY['user.login','order.created','product.updated','refund.issued',
                                          'user.updated'])[1 + g %% 5] AS action,
                                   (ARRAY['user','order','product','order','user'])[1 + g %% 5] AS entity) a
        """,
        params,
    )
    return params


def planted_orders(users: int, scale: int, now: float) -> list[PlantedOrder]:
    """The fault-related orders of the last hour (deterministic apart from `now`)."""
    rng = random.Random(7_311)
    out: list[PlantedOrder] = []
    n = scale

    def new(kind: str, created: float, decline: int = -1) -> PlantedOrder:
        nonlocal n
        n += 1
        pi = "pi_3" + "".join(
            rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789", k=21)
        )
        return PlantedOrder(
            id="ord_" + str(n).zfill(7),
            user_id="usr_" + str(rng.randint(1, users)).zfill(6),
            total_cents=rng.randint(1_500, 24_000),
            payment_intent=pi,
            created=int(created),
            kind=kind,
            decline=decline,
        )

    for k in range(FAILED_PAYMENTS):
        out.append(new("failed", now - 3500 + k * 140, decline=k % len(DECLINES)))
    for k in range(STUCK_ORDERS):
        out.append(new("stuck", now - (ROTATION_MINUTES_AGO - 5) * 60 + k * 210))
    for k in range(OPEN_CHECKOUTS):
        out.append(new("open", now - 240 + k * 60))
    return sorted(out, key=lambda o: o.created)


def insert_planted(conn: psycopg.Connection, planted: list[PlantedOrder], stuck_pending: bool) -> None:
    """Insert the planted orders (one item each); stuck ones are pending or paid by the fault's state."""
    for o in planted:
        if o.kind == "stuck":
            status = "pending" if stuck_pending else "paid"
        else:
            status = {"failed": "failed", "open": "pending"}[o.kind]
        conn.execute(
            'INSERT INTO "Order" ("id", "userId", "status", "total", "stripePaymentIntentId", "createdAt", '
            '"updatedAt") VALUES (%s, %s, %s, %s / 100.0, %s, to_timestamp(%s), to_timestamp(%s))',
            (o.id, o.user_id, status, o.total_cents, o.payment_intent, o.created, o.created + 2),
        )
        conn.execute(
            'INSERT INTO "OrderItem" ("id", "orderId", "productId", "quantity", "price") '
            "VALUES (%s, %s, 'prod_0001', 1, %s / 100.0)",
            ("item_" + o.id[4:] + "_1", o.id, o.total_cents),
        )


def set_stuck_pending(shop_dsn: str, planted: list[dict], pending: bool) -> None:
    """Put the stuck orders back to pending (fault planted again) or to paid."""
    ids = [o["id"] for o in planted if o["kind"] == "stuck"]
    with psycopg.connect(shop_dsn, autocommit=True) as conn:
        conn.execute(
            'UPDATE "Order" SET "status" = %s, "updatedAt" = now() WHERE "id" = ANY(%s)',
            ("pending" if pending else "paid", ids),
        )


def seed_shop(
    admin_shop_dsn: str, app_shop_dsn: str, scale: int, stuck_pending: bool, stat_statements: bool = True
) -> dict:
    """Schema + bulk data + planted orders + indexes + grants (+ pg_stat_statements when the server has it);
    returns facts for the stand-ins."""
    t0 = time.monotonic()
    with psycopg.connect(app_shop_dsn, autocommit=False) as conn:
        conn.execute(_sql_file("schema.sql"))
        params = _bulk_seed(conn, scale)
        now = conn.execute("SELECT extract(epoch FROM now())::float8").fetchone()[0]
        planted = planted_orders(params["users"], scale, now)
        insert_planted(conn, planted, stuck_pending)
        conn.execute(_sql_file("indexes.sql"))
        conn.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(sql.Identifier(MAINT_ROLE))
        )
        conn.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {}").format(
                sql.Identifier(MAINT_ROLE)
            )
        )
        conn.commit()
        recent = conn.execute(
            'SELECT "id", "userId", "status", ("total" * 100)::int, "stripePaymentIntentId", '
            'extract(epoch FROM "createdAt")::int FROM "Order" '
            'WHERE "createdAt" > now() - interval \'2 days\' AND "id" <= %s '
            'ORDER BY "createdAt" DESC LIMIT 300',
            ("ord_" + str(scale).zfill(7),),
        ).fetchall()
    with psycopg.connect(app_shop_dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    if stat_statements:
        with psycopg.connect(admin_shop_dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return {
        "users": params["users"],
        "products": params["products"],
        "orders": scale + len(planted),
        "now": now,
        "planted": [o.as_dict() for o in planted],
        "recent": [
            {
                "id": r[0],
                "user_id": r[1],
                "status": r[2],
                "total_cents": r[3],
                "payment_intent": r[4],
                "created": r[5],
            }
            for r in recent
        ],
        "seconds": round(time.monotonic() - t0, 2),
    }


def reset_stats(admin_shop_dsn: str, stat_statements: bool = True) -> None:
    """Forget statement and table statistics (what the seeding itself did)."""
    with psycopg.connect(admin_shop_dsn, autocommit=True) as conn:
        if stat_statements:
            conn.execute("SELECT pg_stat_statements_reset()")
        conn.execute("SELECT pg_stat_reset()")


def set_missing_index(app_shop_dsn: str, missing: bool) -> None:
    """missing-index fault: drop (on) or create (off) "Order_userId_idx"."""
    with psycopg.connect(app_shop_dsn, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '20s'")
        if missing:
            conn.execute('DROP INDEX IF EXISTS "Order_userId_idx"')
        else:
            conn.execute('CREATE INDEX IF NOT EXISTS "Order_userId_idx" ON "Order"("userId")')
        conn.execute('ANALYZE "Order"')


def run_user_orders_workload(app_shop_dsn: str, users: int, calls: int = 300) -> float:
    """The app's "my orders" query for `calls` users (what makes the missing index hurt); returns seconds."""
    rng = random.Random(99)
    t0 = time.monotonic()
    dsn = app_shop_dsn + ("&" if "?" in app_shop_dsn else "?") + "application_name=shop-app"
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(calls):
            conn.execute(USER_ORDERS_QUERY, ("usr_" + str(rng.randint(1, users)).zfill(6),)).fetchall()
    return time.monotonic() - t0


def index_present(app_shop_dsn: str) -> bool:
    """True when "Order_userId_idx" exists."""
    with psycopg.connect(app_shop_dsn) as conn:
        return conn.execute("SELECT to_regclass('public.\"Order_userId_idx\"') IS NOT NULL").fetchone()[0]
