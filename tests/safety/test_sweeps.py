"""Safety sweeps on the real sandbox, through the real runner: a default run cannot write, and cannot leak.

The write sweep tries every write it can think of through every database session a default run's kernel can
open and checks the database is byte-identical afterwards; the leak sweep tries every way to print, log,
display, encode or raise each sandbox secret and greps every derived form in outputs/ and on the terminal.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import psycopg
import pytest
from psycopg import sql
from safety.sweep_notebooks import LEAK_WAYS, WRITE_ATTEMPTS, WRITE_SWEEP, leak_cells, notebook

from opsnb.checks.secrets import DSN_PASSWORD, MIN_SHOWN_PREFIX, derived_forms
from opsnb.paths import project_root

OPSNB = str(Path(sys.executable).parent / "opsnb")


def _checksums(admin_url: str) -> dict[str, str]:
    """md5 of every table of the shop database (rows in a stable order) plus the catalog facts a write
    would change: relations, large objects, roles' memberships, database settings."""
    sums = {}
    with psycopg.connect(admin_url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        for schema, table in tables:
            query = sql.SQL("SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {} t")
            sums[f"{schema}.{table}"] = conn.execute(query.format(sql.Identifier(schema, table))).fetchone()[
                0
            ]
        for label, query in (
            (
                "relations",
                "SELECT string_agg(oid::text || relname || relkind::text, ',' ORDER BY oid) FROM pg_class",
            ),
            ("large objects", "SELECT count(*)::text FROM pg_largeobject_metadata"),
            (
                "db settings",
                "SELECT coalesce(string_agg(array_to_string(setconfig, ';'), '|'), '') FROM pg_db_role_setting",
            ),
            ("acl", "SELECT string_agg(coalesce(relacl::text, '-'), ',' ORDER BY oid) FROM pg_class"),
            ("auto conf", "SELECT count(*)::text FROM pg_file_settings WHERE sourcefile LIKE '%auto.conf'"),
        ):
            sums[label] = conn.execute(query).fetchone()[0]
    return sums


def _workspace(tmp_path: Path, name: str, nb: nbformat.NotebookNode) -> dict[str, str]:
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir(exist_ok=True)
    nbformat.write(nb, notebooks / f"{name}.ipynb")
    params = tmp_path / "parameters"
    if not params.exists():
        shutil.copytree(project_root() / "parameters", params)
    sandbox_yaml = params / "sandbox.yaml"
    text = sandbox_yaml.read_text()
    if "writer_database_url_env" not in text:
        text = text.replace(
            "defaults:\n", "defaults:\n  writer_database_url_env: SANDBOX_WRITER_DATABASE_URL\n", 1
        )
        sandbox_yaml.write_text(text)
    return {
        **os.environ,
        "OPSNB_NOTEBOOKS": str(notebooks),
        "OPSNB_PARAMETERS": str(params),
        "OPSNB_OUTPUTS": str(tmp_path / "outputs"),
    }


def _run(env: dict[str, str], name: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [OPSNB, "run", name, "--env", "sandbox", *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def _manifest(outputs: Path, name: str) -> tuple[dict, Path]:
    found = sorted((outputs / name).glob("*.json"))
    assert len(found) == 1, found
    return json.loads(found[0].read_text()), found[0]


def test_write_sweep_every_write_refused_database_unchanged(sandbox, tmp_path) -> None:
    env = _workspace(tmp_path, "write-sweep", notebook(WRITE_SWEEP))
    before = _checksums(sandbox.admin_url)
    proc = _run(env, "write-sweep")
    after = _checksums(sandbox.admin_url)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    nb = nbformat.read(next((tmp_path / "outputs" / "write-sweep").glob("*.ipynb")), as_version=4)
    from opsnb.checks import scraps

    results = scraps.read(nb)["sweep_results"]
    allowed = [r for r in results if r[2] != "refused"]
    tried = len(results)
    print(f"\nwrite sweep: tried {tried} / refused {tried - len(allowed)} / allowed {len(allowed)}")
    assert tried >= 4 * len(WRITE_ATTEMPTS) + 1 >= 25
    assert not allowed, allowed
    changed = {k for k in before if before[k] != after.get(k)}
    assert not changed, f"changed by the sweep: {changed}"


def _secret_values(env: dict[str, str]) -> dict[str, str]:
    """The sandbox's secrets by variable name: keys, tokens and the passwords inside database URLs."""
    values = {k: v for k, v in env.items() if re.search(r"KEY|SECRET|TOKEN", k) and len(v) >= 8}
    for k, v in env.items():
        match = DSN_PASSWORD.search(v)
        if k.endswith("DATABASE_URL") and match:
            values[k + "(password)"] = match.group("password")
    return values


def test_leak_sweep_no_form_of_any_secret_reaches_outputs_or_terminal(sandbox, tmp_path) -> None:
    names = [
        "SANDBOX_DATABASE_URL",
        "SANDBOX_MAINT_DATABASE_URL",
        "STRIPE_SECRET_KEY",
        "NEXTAUTH_SECRET",
        "VERCEL_TOKEN",
    ]
    env = _workspace(tmp_path, "leak-sweep", notebook(leak_cells(names)))
    proc = _run(env, "leak-sweep")
    assert proc.returncode == 4, proc.stdout + proc.stderr  # the last cell raises, on purpose
    manifest, _ = _manifest(tmp_path / "outputs", "leak-sweep")
    assert any("leak in key" in f["title"] for f in manifest["findings"])  # the sweep really ran its cells
    secrets = _secret_values(sandbox.env)
    forms: set[str] = set()
    for value in secrets.values():
        forms |= {f for f in derived_forms(value) if len(f) >= 8}
        forms.add(value[: MIN_SHOWN_PREFIX + 2])  # a shortened display
    files = [p for p in (tmp_path / "outputs").rglob("*") if p.is_file()]
    assert len(files) >= 4
    leaked = []
    for path in files:
        text = path.read_bytes().decode("utf-8", "replace")
        leaked += [(path.name, f[:4] + "…") for f in forms if f in text]
    for stream in (proc.stdout, proc.stderr):
        leaked += [("terminal", f[:4] + "…") for f in forms if f in stream]
    tried = len(names) * len(LEAK_WAYS)
    print(f"\nleak sweep: tried {tried} ways x forms {len(forms)} / leaked {len(leaked)}")
    assert not leaked, leaked
    # The terminal holds the verdict line only.
    assert proc.stderr.strip() == "" or "\n" not in proc.stderr.strip(), proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 1, proc.stdout


@pytest.fixture(autouse=True)
def _no_sandbox_writer_in_parent(monkeypatch) -> None:
    """The runner must not rely on the test's own environment to hide the writer."""
    monkeypatch.delenv("SANDBOX_WRITER_DATABASE_URL", raising=False)
