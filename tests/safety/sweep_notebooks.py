"""The notebooks of the safety sweeps: each tries, from inside a default run's kernel, what an attacker or a
careless cell would try, and records what happened as a scrap the test reads back."""

from __future__ import annotations

import nbformat

PARAMS = """database_url_env: str = "DATABASE_URL"  # reader
maint_database_url_env: str = "MAINT_DATABASE_URL"  # CREATEDB role of restore-test
writer_database_url_env: str = "WRITER_DATABASE_URL"  # only --allow-writes runs hold it
stripe_key_env: str = "STRIPE_SECRET_KEY"  # a vendor key
nextauth_secret_env: str = "NEXTAUTH_SECRET"  # a signing secret
"""

# Each attempt is (label, SQL); every one of them would change the database, its catalog, other sessions or
# the server if the role allowed it. Several statements in one string are sent as one simple query.
UPDATE = 'UPDATE "Product" SET "price" = "price" + 1'
WRITE_ATTEMPTS = [
    ("update", UPDATE),
    ("insert", 'INSERT INTO "AuditLog" ("id", "action") VALUES (\'sweep\', \'sweep\')'),
    ("delete", 'DELETE FROM "OrderItem"'),
    ("truncate", 'TRUNCATE "OrderItem"'),
    ("session default off", f"SET default_transaction_read_only = off; {UPDATE}"),
    ("begin read write", f"BEGIN READ WRITE; {UPDATE}; COMMIT"),
    ("session characteristics", f"SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; {UPDATE}"),
    ("set_config", f"SELECT set_config('default_transaction_read_only', 'off', false); {UPDATE}"),
    ("transaction_read_only", f"SET transaction_read_only = off; {UPDATE}"),
    ("do block", f"SET default_transaction_read_only = off; DO $$BEGIN {UPDATE}; END$$"),
    ("create table", "SET default_transaction_read_only = off; CREATE TABLE public.sweep (i int)"),
    ("create temp table", "SET default_transaction_read_only = off; CREATE TEMP TABLE sweep (i int)"),
    ("lo_create", "SET default_transaction_read_only = off; SELECT lo_create(0)"),
    ("lo_from_bytea", "SET default_transaction_read_only = off; SELECT lo_from_bytea(0, 'x')"),
    ("create index", 'SET default_transaction_read_only = off; CREATE INDEX ON "Order" ("userId")'),
    ("alter table", 'SET default_transaction_read_only = off; ALTER TABLE "Order" ADD COLUMN sweep int'),
    ("drop table", 'SET default_transaction_read_only = off; DROP TABLE "AuditLog"'),
    ("grant", 'SET default_transaction_read_only = off; GRANT ALL ON "Order" TO PUBLIC'),
    ("copy from program", "SET default_transaction_read_only = off; COPY \"AuditLog\" FROM PROGRAM 'true'"),
    (
        "create function",
        "SET default_transaction_read_only = off; CREATE FUNCTION public.sweep() RETURNS int "
        "LANGUAGE sql AS 'SELECT 1'",
    ),
    ("create extension", "SET default_transaction_read_only = off; CREATE EXTENSION IF NOT EXISTS pgcrypto"),
    ("lock table", 'BEGIN; LOCK TABLE "Order" IN ACCESS EXCLUSIVE MODE; COMMIT'),
    (
        "terminate app backend",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'shop_app' "
        "AND pid <> pg_backend_pid() LIMIT 1",
    ),
    (
        "cancel app backend",
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE usename = 'shop_app' "
        "AND pid <> pg_backend_pid() LIMIT 1",
    ),
    ("set role", "SET ROLE shop_app"),
    ("session authorization", "SET SESSION AUTHORIZATION shop_app"),
    ("alter system", "ALTER SYSTEM SET work_mem = '1GB'"),
    ("reload conf", "SELECT pg_reload_conf()"),
    ("stat statements reset", "SELECT pg_stat_statements_reset()"),
    ("stat reset", "SELECT pg_stat_reset()"),
    ("alter database", "ALTER DATABASE shop SET work_mem = '1GB'"),
    ("drop database", "DROP DATABASE shop"),
]

WRITE_SWEEP = [
    "import os, json\n"
    "import psycopg\n"
    "from opsnb.checks import findings, scraps\n"
    "from opsnb.checks.postgres import connect, DatabaseError\n"
    "from opsnb.checks.secrets import secret\n"
    f"ATTEMPTS = {WRITE_ATTEMPTS!r}\n"
    "results = []\n"
    "def attempt(session, label, run):\n"
    "    notices = []\n"
    "    try:\n"
    "        run(notices)\n"
    "        refused = any(w in n for n in notices for w in ('skipping', 'permission denied', 'no privileges'))\n"
    "        results.append([session, label, 'refused' if refused else 'ALLOWED', '; '.join(notices)[:200]])\n"
    "    except Exception as exc:\n"
    "        results.append([session, label, 'refused', f'{type(exc).__name__}: {exc}'[:200]])\n",
    # Through opsnb's read session, a read-write session of the same role, and raw psycopg on each DSN held.
    "def via_opsnb(read_only):\n"
    "    def run_sql(sql_text):\n"
    "        def go(notices):\n"
    "            with connect(database_url_env, read_only=read_only) as db:\n"
    "                db.conn.add_notice_handler(lambda d: notices.append(d.message_primary or ''))\n"
    "                db.execute(sql_text)\n"
    "        return go\n"
    "    return run_sql\n"
    "def via_raw(env_name):\n"
    "    def run_sql(sql_text):\n"
    "        def go(notices):\n"
    "            with psycopg.connect(secret(env_name).reveal(), autocommit=True) as conn:\n"
    "                conn.add_notice_handler(lambda d: notices.append(d.message_primary or ''))\n"
    "                conn.execute(sql_text)\n"
    "        return go\n"
    "    return run_sql\n"
    "sessions = {'opsnb read-only': via_opsnb(True), 'opsnb read-write': via_opsnb(False),\n"
    "            'raw reader': via_raw(database_url_env), 'raw maint': via_raw(maint_database_url_env)}\n"
    "for name, make in sessions.items():\n"
    "    for label, sql_text in ATTEMPTS:\n"
    "        attempt(name, label, make(sql_text))",
    # The writer's secret is not in a default run's kernel at all.
    "writer_held = writer_database_url_env in os.environ\n"
    "results.append(['environment', 'writer DSN held', 'ALLOWED' if writer_held else 'refused', ''])\n"
    "scraps.glue('sweep_results', results)\n"
    "findings.conclude('pass', 'write sweep done', check_id='sweep.writes')",
    "findings.record()",
]


def notebook(cells: list[str]) -> nbformat.NotebookNode:
    """A runbook-shaped notebook with the sweep's parameters cell."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Safety sweep\nTries what a default run must never be able to do."),
        nbformat.v4.new_code_cell(PARAMS, metadata={"tags": ["parameters"]}),
        *[nbformat.v4.new_code_cell(src) for src in cells],
    ]
    return nb


# Ways a cell can leak a secret into the evidence or the terminal. `S` is the clear value of one secret.
LEAK_WAYS = [
    ("print", "print('value', S)"),
    ("repr in a dict", "print({'k': S})"),
    ("last expression", "S"),
    ("stderr", "import sys; sys.stderr.write(S + '\\n')"),
    ("fd 1", "import os; os.write(1, (S + '\\n').encode())"),
    ("fd 2", "import os; os.write(2, (S + '\\n').encode())"),
    ("os.system", "import os, shlex; os.system('echo ' + shlex.quote(S))"),
    ("subprocess env", "import subprocess; subprocess.run(['env'])"),
    ("logging", "import logging; logging.getLogger('sweep').error('value %s', S)"),
    ("warning", "import warnings; warnings.warn('value ' + S)"),
    ("split in two writes", "print(S[:len(S)//2], end=''); print(S[len(S)//2:])"),
    ("base64", "import base64; print(base64.b64encode(('x' + S).encode()).decode())"),
    ("base64 aligned 2", "import base64; print(base64.b64encode(('xy' + S).encode()).decode())"),
    ("url-encoded", "from urllib.parse import quote; print(quote(S, safe=''))"),
    ("json", "import json; print(json.dumps({'v': S + '\"<&'}))"),
    (
        "html display",
        "from IPython.display import HTML, display; import html; display(HTML('<b>' + html.escape(S) + '</b>'))",
    ),
    ("markdown display", "from IPython.display import Markdown, display; display(Markdown('**' + S + '**'))"),
    (
        "pandas shortened",
        "import pandas as pd; pd.set_option('display.max_colwidth', 12); display(pd.DataFrame({'v': [S + 'x' * 40]}))",
    ),
    ("plot title", "import matplotlib.pyplot as plt; plt.title(S)"),
    (
        "finding detail",
        "from opsnb.checks import findings; findings.conclude('warn', 'leak in detail', severity='P3', detail='value ' + S, check_id='leak.detail')",
    ),
    (
        "finding evidence key",
        "from opsnb.checks import findings; findings.conclude('warn', 'leak in key', severity='P3', evidence={S: 1}, check_id='leak.key')",
    ),
    ("exception", "raise RuntimeError('value ' + S)"),
]


def leak_cells(env_names: list[str]) -> list[str]:
    """One cell per (secret, way): every way is tried on every secret; exceptions are part of the sweep."""
    cells = ["from opsnb.checks.secrets import secret\nSECRETS = {}"]
    for name in env_names:
        cells.append(f"SECRETS[{name!r}] = secret({name!r}).reveal()")
    for name in env_names:
        for _label, code in LEAK_WAYS:
            if code.startswith("raise"):
                continue  # the one that raises is the last cell: a raise ends the run
            cells.append(f"S = SECRETS[{name!r}]\n" + code)
    cells.append("from opsnb.checks import findings\nfindings.record()")
    cells.append(f"S = SECRETS[{env_names[0]!r}]\nraise RuntimeError('value ' + S)")
    return cells
