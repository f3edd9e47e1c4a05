"""pg_stat_statements: is it usable here and since when, the top statements, the slow ones.

``statement_stats`` probes once what the extension offers this role in this database (catalog reads; a
refusal becomes ``usable=False`` with the reason) into a StatementStats that the other functions take.
Each other function runs one SQL statement; thresholds are keyword arguments with PgHero's defaults
(slow = mean >= 20 ms and >= 100 calls).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from opsnb.checks.findings import CouldNotLook, check, conclude
from opsnb.checks.postgres.roles import STATS_HINT
from opsnb.checks.postgres.session import Database, DatabaseError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

ENABLE_HINT = (
    "enable it: add pg_stat_statements to shared_preload_libraries (needs a restart), then run "
    "`CREATE EXTENSION pg_stat_statements;` in this database. On Neon the library is preloaded: "
    "`CREATE EXTENSION pg_stat_statements;` is enough, but its statistics vanish whenever the compute "
    "suspends (scale to zero), so check when they were last reset before trusting them"
)
CREATE_HINT = (
    "pg_stat_statements is already in shared_preload_libraries: run `CREATE EXTENSION pg_stat_statements;` "
    "in this database (no restart needed)"
)
# what pg_stat_statements shows instead of the text of another role's statement (no pg_read_all_stats)
HIDDEN_TEXT = "<insufficient privilege>"
# pg_stat_statements' timing columns by version (PG13+ *_exec_time): the only names accepted for them
TIME_COLUMNS = ("total_exec_time", "mean_exec_time", "total_time", "mean_time")
THIS_DB = sql.SQL("dbid = (SELECT oid FROM pg_database WHERE datname = current_database())")
TOP_COLUMNS = ["queryid", "query", "calls", "rows", "total_ms", "mean_ms", "share_pct"]


@dataclass(frozen=True)
class StatementStats:
    """What pg_stat_statements offers this role in this database."""

    usable: bool
    why: str = ""  # when not usable: what is missing
    total: str = "total_exec_time"  # the timing columns of this version (ms)
    mean: str = "mean_exec_time"
    statements: int = 0  # statements recorded for this database
    hidden_texts: int = 0  # ... whose text this role may not read
    reset_at: dt.datetime | None = None  # None: unknown (PostgreSQL < 14) or not usable
    preloaded: bool | None = None  # in shared_preload_libraries; None: the setting is hidden from this role

    @property
    def hint(self) -> str:
        """How to enable it here: only CREATE EXTENSION when the library is already preloaded."""
        return CREATE_HINT if self.preloaded else ENABLE_HINT

    def require(self) -> None:
        """Raise CouldNotLook (how to enable it) when the statistics cannot be read."""
        if not self.usable:
            raise CouldNotLook(self.why, self.hint)

    def as_frame(self) -> pd.DataFrame:
        """One row, for a conclusion's evidence."""
        import pandas as pd

        return pd.DataFrame([asdict(self)])


def _short(text: Any, width: int = 160) -> str:
    one = " ".join(str(text or "").split())
    return one if len(one) <= width else one[: width - 1] + "…"


# --- what the extension offers --------------------------------------------------------------------------


def extension_status(db: Database) -> pd.DataFrame:
    """One row: installed in this database, available on the server, preloaded libraries, view visible."""
    return db.query(
        """
        SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') AS installed,
               EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements') AS available,
               (SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries') AS preload_libraries,
               to_regclass('pg_stat_statements') IS NOT NULL AS view_visible
        """
    )


def statement_columns(db: Database) -> list[str]:
    """Column names of the pg_stat_statements view (PG13+ has *_exec_time, older *_time)."""
    return [
        r["attname"]
        for r in db.rows(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass('pg_stat_statements') "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
        )
    ]


def time_columns(columns: list[str]) -> tuple[str, str]:
    """(total, mean) time column names for this pg_stat_statements version (ms in both)."""
    if "mean_exec_time" in columns:  # PostgreSQL 13+
        return "total_exec_time", "mean_exec_time"
    return "total_time", "mean_time"


def statement_counts(db: Database) -> pd.DataFrame:
    """One row: statements recorded for this database, and how many of their texts this role may not read."""
    return db.query(
        sql.SQL(
            "SELECT count(*)::int AS statements, count(*) FILTER (WHERE query = %s)::int AS hidden_texts "
            "FROM pg_stat_statements WHERE {this_db}"
        ).format(this_db=THIS_DB),
        (HIDDEN_TEXT,),
    )


def statements_reset_at(db: Database) -> dt.datetime | None:
    """When pg_stat_statements was last reset (PG14+ pg_stat_statements_info), else None."""
    if db.scalar("SELECT to_regclass('pg_stat_statements_info') IS NOT NULL"):
        return db.scalar("SELECT stats_reset FROM pg_stat_statements_info")
    return None


def preloaded(setting: str | None) -> bool | None:
    """Whether pg_stat_statements is in a shared_preload_libraries setting (None when it was hidden)."""
    if setting is None:
        return None
    return "pg_stat_statements" in [lib.strip().strip('"') for lib in setting.split(",")]


def statement_stats(db: Database) -> StatementStats:
    """Probe pg_stat_statements: usable or why not, its timing columns, how much of it is hidden, since when."""
    ext = extension_status(db).iloc[0]
    preload = ext["preload_libraries"]
    if not ext["installed"] or not ext["view_visible"]:
        return StatementStats(
            usable=False,
            preloaded=preloaded(preload),
            why=f"pg_stat_statements is {'installed' if ext['installed'] else 'not installed'} in this "
            f"database ({'available' if ext['available'] else 'not available'} on the server; "
            f"shared_preload_libraries = {preload!r}"
            + (", hidden from this role" if preload is None else "")
            + ")",
        )
    try:
        total, mean = time_columns(statement_columns(db))
        counts = statement_counts(db).iloc[0]
        reset_at = statements_reset_at(db)
    except DatabaseError as exc:
        # e.g. installed but not preloaded: "pg_stat_statements must be loaded via shared_preload_libraries"
        return StatementStats(
            usable=False, why=f"pg_stat_statements cannot be read: {exc}", preloaded=preloaded(preload)
        )
    return StatementStats(
        usable=True,
        total=total,
        mean=mean,
        statements=int(counts["statements"]),
        hidden_texts=int(counts["hidden_texts"]),
        reset_at=reset_at,
        preloaded=preloaded(preload),
    )


@check("postgres.statement-stats", hint=ENABLE_HINT)
def check_statement_stats(seen: StatementStats) -> pd.DataFrame:
    """Can the statement statistics be trusted: enabled, readable by this role, and since when they count."""
    seen.require()
    evidence = seen.as_frame()
    since = (
        f"{seen.reset_at:%Y-%m-%d %H:%M:%S %Z}".strip()
        if seen.reset_at is not None
        else "an unknown reset time (PostgreSQL < 14)"
    )
    detail = (
        f"{seen.statements} statement(s) recorded for this database since {since}; timing columns "
        f"{seen.total}/{seen.mean} (on Neon the statistics restart whenever the compute resumes)."
    )
    if seen.hidden_texts:
        return conclude(
            "inconclusive",
            f"pg_stat_statements hides {seen.hidden_texts} of {seen.statements} statement texts from this role",
            detail=f"{detail} Statements of other roles show as {HIDDEN_TEXT}: their plans cannot be read — "
            f"{STATS_HINT}.",
            evidence=evidence,
        )
    return conclude("pass", "pg_stat_statements is enabled", detail=detail, evidence=evidence)


# --- top and slow statements ----------------------------------------------------------------------------


def time_column(name: str) -> sql.Identifier:
    """A pg_stat_statements timing column as an identifier; ValueError for any name outside TIME_COLUMNS."""
    if name not in TIME_COLUMNS:
        raise ValueError(f"unexpected time column {name!r}")
    return sql.Identifier(name)


def top_statements_sql(total_col: str, mean_col: str, by: str = "mean") -> sql.Composed:
    """The statement of top_statements(); one parameter: the limit."""
    if by not in ("mean", "total"):
        raise ValueError("by must be 'mean' or 'total'")
    return sql.SQL(
        """
        SELECT queryid, query, calls, rows,
               round({total}::numeric, 2)::float8 AS total_ms,
               round({mean}::numeric, 2)::float8 AS mean_ms,
               round((100 * {total} / nullif(sum({total}) OVER (), 0))::numeric, 2)::float8
                 AS share_pct
        FROM pg_stat_statements
        WHERE {this_db}
        ORDER BY {order} DESC, calls DESC
        LIMIT %s
        """
    ).format(
        total=time_column(total_col),
        mean=time_column(mean_col),
        this_db=THIS_DB,
        order=sql.Identifier("mean_ms" if by == "mean" else "total_ms"),
    )


def top_statements(db: Database, seen: StatementStats, by: str = "mean", limit: int = 10) -> pd.DataFrame:
    """Top statements of this database by mean or total time: calls, rows, ms, share of total time (%).
    Empty (same columns) when pg_stat_statements is not usable: check_statement_stats says why."""
    import pandas as pd

    statement = top_statements_sql(seen.total, seen.mean, by)  # ValueError before any SQL runs
    if not seen.usable:
        return pd.DataFrame(columns=TOP_COLUMNS)
    return db.query(statement, (limit,))


def slow_statements_sql(total_col: str, mean_col: str) -> sql.Composed:
    """The statement of slow_statements(); parameters: min mean ms, min calls."""
    total, mean = time_column(total_col), time_column(mean_col)
    return sql.SQL(
        """
        SELECT queryid, query, calls,
               round({mean}::numeric, 2)::float8 AS mean_ms,
               round({total}::numeric, 2)::float8 AS total_ms
        FROM pg_stat_statements
        WHERE {this_db} AND {mean} >= %s AND calls >= %s
        ORDER BY {total} DESC
        """
    ).format(total=total, mean=mean, this_db=THIS_DB)


def slow_statements(
    db: Database, seen: StatementStats, min_mean_ms: float = 20, min_calls: int = 100
) -> pd.DataFrame:
    """Statements slow by PgHero's rule: mean >= ``min_mean_ms`` (20 ms) and calls >= ``min_calls`` (100)."""
    statement = slow_statements_sql(seen.total, seen.mean)  # ValueError before any SQL runs
    return db.query(statement, (min_mean_ms, min_calls))


@check("postgres.slow-statements", hint=ENABLE_HINT)
def check_slow_statements(
    db: Database, seen: StatementStats, min_mean_ms: float = 20, min_calls: int = 100
) -> pd.DataFrame:
    """P2 listing the statements slow by PgHero's rule (defaults 20 ms mean, 100 calls), worst total first.

    Timings of other roles' statements are visible even when their text is not: those count as slow too,
    and the detail says their text is hidden.
    """
    seen.require()
    slow = slow_statements(db, seen, min_mean_ms, min_calls)
    rule = f"mean >= {min_mean_ms:g} ms and >= {min_calls} calls"
    if not len(slow):
        return conclude("pass", f"No statement is slow ({rule})", evidence=slow)
    worst = slow.iloc[0]
    hidden = int((slow["query"] == HIDDEN_TEXT).sum())
    detail = f"Worst by total time: {worst['mean_ms']} ms mean over {worst['calls']} calls: {_short(worst['query'])}."
    if hidden:
        detail += f" The text of {hidden} of them is hidden from this role — {STATS_HINT}."
    return conclude(
        "warn",
        f"{len(slow)} statement(s) slow by PgHero's rule ({rule})",
        severity="P2",
        detail=detail,
        evidence=slow,
    )


def plot_top_statements(
    df: pd.DataFrame, value: str = "mean_ms", limit: int = 10, title: str | None = None
) -> Figure:
    """Horizontal bar chart of the top ``limit`` statements by ``value``; returns the matplotlib Figure."""
    import matplotlib

    if not matplotlib.get_backend().lower().startswith(("module://matplotlib_inline", "module://ipykernel")):
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    top = df.head(limit).iloc[::-1] if len(df) else df
    fig, ax = plt.subplots(figsize=(9, 0.45 * max(len(top), 2) + 1))
    labels = [_short(q, 60) for q in top["query"]] if len(top) else []
    ax.barh(range(len(top)), list(top[value]) if len(top) else [], color="#c0504d")
    ax.set_yticks(range(len(top)), labels, fontsize=8)
    ax.set_xlabel({"mean_ms": "mean time per call (ms)", "total_ms": "total time (ms)"}.get(value, value))
    ax.set_title(title or f"Top {limit} statements by {value}")
    if not len(top):
        ax.text(0.5, 0.5, "no statements", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    plt.close(fig)  # shown once by the notebook's display of the return value
    return fig
