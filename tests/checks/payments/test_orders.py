"""opsnb.checks.payments.orders: pending orders read through a reader role on a real PostgreSQL, each looked up
in a Stripe-shaped API, diagnosed, and judged as one conclusion."""

from __future__ import annotations

import pytest
from checks.payments.conftest import KEY_ENV, conclusion

from opsnb.checks.payments import orders

# stripe's HTTPXClient posts form bodies with httpx's deprecated data=bytes; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

CHECK = "payments.stuck-orders"


@pytest.mark.parametrize(
    "status,error,diagnosis",
    [
        ("succeeded", "", "missed webhook"),
        ("processing", "", "payment in progress"),
        ("requires_payment_method", "", "awaiting customer"),
        ("requires_action", "", "awaiting customer"),
        ("canceled", "", "abandoned (canceled)"),
        (
            None,
            "InvalidRequestError: No such payment_intent: 'pi_1'; a similar object exists in live mode, but a "
            "test mode key was used to make this request.",
            "test/live mismatch",
        ),
        (None, "InvalidRequestError: No such payment_intent: 'pi_1'", "not in Stripe"),
        (None, "", "no PaymentIntent"),
    ],
)
def test_diagnose_order(status, error, diagnosis):
    assert orders.diagnose_order(status, error) == diagnosis


def check(orders_db, fake_stripe, minutes: int = 15):
    table = orders.check_stuck_orders(orders_db.env, fake_stripe.url, KEY_ENV, minutes)
    return table, conclusion(CHECK)


def test_missed_webhooks_fail_with_every_pending_order_diagnosed(orders_db, fake_stripe):
    orders_db.reset(
        [
            ("ord_1", "pending", "pi_paid1", 60),
            ("ord_2", "pending", "pi_paid2", 30),
            ("ord_3", "pending", "pi_wait", 45),
            ("ord_4", "pending", "pi_live", 40),
            ("ord_5", "pending", "pi_gone", 35),
            ("ord_6", "pending", None, 20),
            ("ord_7", "pending", "pi_paid3", 5),  # too young to count as stuck
            ("ord_8", "paid", "pi_paid4", 90),
        ]
    )
    fake_stripe.intents = {
        "pi_paid1": "succeeded",
        "pi_paid2": "succeeded",
        "pi_wait": "requires_payment_method",
    }
    table, found = check(orders_db, fake_stripe)
    assert dict(zip(table["order_id"], table["diagnosis"], strict=True)) == {
        "ord_1": "missed webhook",
        "ord_3": "awaiting customer",
        "ord_4": "test/live mismatch",
        "ord_5": "not in Stripe",
        "ord_2": "missed webhook",
        "ord_6": "no PaymentIntent",
    }  # oldest first
    assert (found.status, found.severity) == ("fail", "P1")
    assert found.title == "2 orders stuck in pending although Stripe says succeeded (missed webhook)"
    assert "missed webhook: ord_1, ord_2" in found.detail and "test/live mismatch: ord_4" in found.detail
    assert found.evidence is table
    looked_up = sorted(path for _, path, _ in fake_stripe.requests)
    assert looked_up == [
        f"/v1/payment_intents/{p}" for p in ("pi_gone", "pi_live", "pi_paid1", "pi_paid2", "pi_wait")
    ]


def test_a_mode_mismatch_alone_fails(orders_db, fake_stripe):
    orders_db.reset([("ord_4", "pending", "pi_live", 40)])
    _, found = check(orders_db, fake_stripe)
    assert (found.status, found.severity) == ("fail", "P1") and "test vs live mismatch" in found.title


def test_payment_intents_stripe_does_not_know_warn(orders_db, fake_stripe):
    orders_db.reset([("ord_5", "pending", "pi_gone", 35), ("ord_6", "pending", None, 20)])
    _, found = check(orders_db, fake_stripe)
    assert (found.status, found.severity) == ("warn", "P2")
    assert found.title == "2 pending orders have no PaymentIntent Stripe knows"
    assert "ord_5: InvalidRequestError: No such payment_intent: 'pi_gone'" in found.detail


def test_orders_awaiting_the_customer_or_none_pass(orders_db, fake_stripe):
    orders_db.reset([("ord_3", "pending", "pi_wait", 45), ("ord_8", "paid", "pi_paid", 90)])
    fake_stripe.intents = {"pi_wait": "requires_action"}
    _, found = check(orders_db, fake_stripe)
    assert found.status == "pass" and "all waiting on the customer or the bank" in found.title
    orders_db.reset([("ord_8", "paid", "pi_paid", 90)])
    table, found = check(orders_db, fake_stripe)
    assert table.empty and (found.status, found.title) == (
        "pass",
        "No order has been pending for more than 15 min",
    )


def test_unreachable_stripe_with_pending_orders_is_inconclusive(orders_db, dead_url):
    orders_db.reset([("ord_1", "pending", "pi_paid1", 60)])
    assert orders.check_stuck_orders(orders_db.env, dead_url, KEY_ENV) is None
    found = conclusion(CHECK)
    assert found.status == "inconclusive" and found.essential
    assert found.detail.startswith("APIConnectionError")


def test_unreachable_database_is_inconclusive_and_its_password_never_shown(monkeypatch, fake_stripe):
    from opsnb.checks.secrets import register

    register("pw-unit-canary-77", "UNIT_DB")
    monkeypatch.setenv(
        "UNIT_DEAD_DB_URL", "postgresql://shop_app:pw-unit-canary-77@127.0.0.1:9/shop?connect_timeout=2"
    )
    assert orders.check_stuck_orders("UNIT_DEAD_DB_URL", fake_stripe.url, KEY_ENV) is None
    found = conclusion(CHECK)
    assert found.status == "inconclusive" and "UNIT_DEAD_DB_URL" in found.detail
    assert "pw-unit-canary-77" not in found.detail
    assert fake_stripe.requests == []


def test_the_reader_role_reads_but_cannot_write(orders_db):
    """What the check connects as: the reader (pg_read_all_data) that the README asks for."""
    import psycopg

    with psycopg.connect(orders_db.reader_url, autocommit=True) as conn:
        assert conn.execute('SELECT count(*) FROM "Order"').fetchone() is not None
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute('UPDATE "Order" SET "status" = \'paid\'')


def test_a_refused_key_is_inconclusive_not_a_missing_payment_intent(orders_db, fake_stripe, monkeypatch):
    """Only "no such PaymentIntent" is an answer about the order; a refused key means Stripe was not asked."""
    orders_db.reset([("ord_1", "pending", "pi_paid1", 60)])
    monkeypatch.setenv(KEY_ENV, "sk_test_wrongkey_0123456789abcdef")
    assert orders.check_stuck_orders(orders_db.env, fake_stripe.url, KEY_ENV) is None
    found = conclusion(CHECK)
    assert found.status == "inconclusive" and found.detail.startswith("AuthenticationError")
    assert "sk_test_wrongkey_0123456789abcdef" not in found.detail
