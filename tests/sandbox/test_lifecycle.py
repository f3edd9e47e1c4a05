"""Lifecycle of a sandbox of its own: up twice, stale detection, healing, down --keep, down."""

from __future__ import annotations

import os
import signal
import socket
import stat
import time
from pathlib import Path

import psycopg
import pytest

from opsnb.sandbox import cli, manager, processes, state


@pytest.fixture
def own_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "sbx"
    monkeypatch.setenv("OPSNB_SANDBOX_DIR", str(state))
    yield state
    manager.down(keep=False)


def _health(rows: list[dict]) -> dict[str, str]:
    return {r["name"]: r["health"] for r in rows}


def _pid_alive(pid: int) -> bool:
    return processes.alive(pid)


def test_up_twice_stale_heal_keep_down(own_state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = manager.up(scale=1_000, faults="none", log=lambda _m: None)
    assert set(first["started"]) == {"postgres", "shop", "s3"}
    assert all(r["health"] == "healthy" for r in first["components"]), first["components"]
    assert "shop-worker" not in _health(first["components"])  # idle-in-transaction is off
    env_file = own_state / "sandbox.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600

    # idempotent: nothing restarted, same pids and ports, same secrets
    env_before = manager.read_env()
    second = manager.up(log=lambda _m: None)
    assert second["started"] == []
    assert [(r["name"], r["pid"], r["port"]) for r in second["components"]] == [
        (r["name"], r["pid"], r["port"]) for r in first["components"]
    ]
    assert manager.read_env() == env_before

    # a killed component is reported stale, status exits 1, up restarts only it
    shop_pid = next(r["pid"] for r in second["components"] if r["name"] == "shop")
    os.kill(shop_pid, signal.SIGKILL)
    assert processes.wait_for(lambda: not _pid_alive(shop_pid), 5)
    rows = manager.status()
    assert _health(rows)["shop"] == "stale" and _health(rows)["postgres"] == "healthy"
    assert f"pid {shop_pid} is not running" in next(r["detail"] for r in rows if r["name"] == "shop")
    capsys.readouterr()
    assert cli.main(["status"]) == 1
    assert "stale" in capsys.readouterr().out
    healed = manager.up(log=lambda _m: None)
    assert healed["started"] == ["shop"]
    assert all(r["health"] == "healthy" for r in healed["components"])

    # down --keep, then someone takes postgres' port: status says so, up moves to a free port, data kept
    pg_port = int(manager.read_env()["SANDBOX_DATABASE_URL"].rsplit(":", 1)[1].split("/")[0])
    stopped = manager.down(keep=True)
    assert set(stopped) == {"shop", "s3", "postgres"}
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", pg_port))
    blocker.listen()
    try:
        rows = manager.status()
        pg_row = next(r for r in rows if r["name"] == "postgres")
        assert pg_row["health"] == "stale" and "taken by another process" in pg_row["detail"]
        again = manager.up(log=lambda _m: None)
        assert all(r["health"] == "healthy" for r in again["components"]), again["components"]
        new_url = manager.read_env()["SANDBOX_DATABASE_URL"]
        assert f":{pg_port}/" not in new_url
        with psycopg.connect(new_url) as conn:
            assert conn.execute('SELECT count(*) FROM "Order"').fetchone()[0] > 1_000  # not re-seeded away
    finally:
        blocker.close()

    # down: every process gone, data removed
    pids = [r["pid"] for r in manager.status() if r["pid"]]
    pg_folder = Path(state.load(state.Paths())["pg"]["folder"])
    manager.down()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
        time.sleep(0.05)
    assert not any(_pid_alive(p) for p in pids)
    assert not own_state.exists() and not pg_folder.exists()
    assert manager.status() == []
    assert cli.main(["status"]) == 1
