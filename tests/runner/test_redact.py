"""What the runner hides: named secrets and secret-looking env-file values; configuration stays readable."""

from __future__ import annotations

from opsnb.runner.redact import scrub_tree, secret_values


def test_secret_values_by_reference_and_by_name() -> None:
    env = {
        "SANDBOX_VERCEL_PROJECT": "shop",
        "SANDBOX_APP_URL": "http://127.0.0.1:8000",
        "STRIPE_SECRET_KEY": "sk_test_abcdef",
        "SANDBOX_DATABASE_URL": "postgresql://shop_app:pw-123456@127.0.0.1:5/shop",
        "CUSTOM": "custom-value-1",
    }
    values = secret_values(env, ["CUSTOM"])
    assert values == {"sk_test_abcdef", "postgresql://shop_app:pw-123456@127.0.0.1:5/shop", "custom-value-1"}


def test_scrub_tree_walks_notebook_like_structures() -> None:
    tree = {"cells": [{"outputs": [{"text": ["token sk_test_abcdef\n", "shop ok"]}]}], "n": 3}
    assert scrub_tree(tree, {"sk_test_abcdef"}) == {
        "cells": [{"outputs": [{"text": ["token ***\n", "shop ok"]}]}],
        "n": 3,
    }
