//! Durable state through sqlx: campaigns, leads, attempts and call events.
//!
//! Two backends behind one [`Store`]: SQLite (a file, the embedded default) and PostgreSQL
//! (a `postgres://` URL, for a server shared by several processes), both through sqlx's `Any`
//! driver. The schema is in `migrations/sqlite/` and `migrations/postgres/` (the same versions,
//! each in its own dialect) and applied with `sqlx::migrate!` on open. Statements are written
//! once in the SQL both accept (`$N` placeholders, `ON CONFLICT`, `RETURNING`,
//! `UPDATE … FROM (VALUES …)`); the few functions that differ (JSON fields, time differences)
//! come from [`Backend`]. Timestamps are RFC 3339 UTC text with milliseconds. Writes that must
//! agree are done in one transaction: a batch of call events together with the attempt rows
//! and lead rows they finish, so a process killed at any point leaves either all of a batch
//! or none of it.

pub mod reads;
pub mod service;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;
use sqlx::any::{AnyArguments, AnyPoolOptions};
use sqlx::{Any, AnyPool, Arguments, AssertSqlSafe, Encode, Executor, Row, Type};

use crate::campaign::leads::NewLead;
use crate::events::{CallEvent, CallEventKind, WallClock, parse_rfc3339, rfc3339_ms};

/// Rows per multi-row statement: 8 bound values per row at most (9 with SQLite's marker
/// column, on up to 512 padded rows), well under SQLite's 32,766 variables per statement (and
/// PostgreSQL's 65,535).
pub const ROWS_PER_STATEMENT: usize = 500;

/// The values of one multi-row statement, bound row by row; [`values_statements`] writes the
/// statement's text once it knows how many rows and values per row there are.
pub(crate) struct RowBinds {
    args: AnyArguments,
    n: usize,
}

impl RowBinds {
    fn new() -> Self {
        Self {
            args: AnyArguments::default(),
            n: 0,
        }
    }

    /// Binds the next value of the current row.
    pub(crate) fn push_bind<'t, T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'t, Any> + Type<Any>,
    {
        self.n += 1;
        // Encoding into `AnyArguments` only moves the value into a list; it cannot fail for
        // the integer and text types bound here.
        self.args.add(value).expect("binding a value");
        self
    }
}

/// Builds `head VALUES (…), (…) tail` for `rows`, [`ROWS_PER_STATEMENT`] rows a statement,
/// `bind` pushing one row's values (the same number of values for every row).
///
/// On PostgreSQL the text follows the row count, so these statements are not kept prepared.
/// On SQLite, where preparing a multi-row statement was a fifth of the store's SQLite time
/// (docs/benchmarks.md), each statement is padded to a few row counts ([`padded_rows`]), so a
/// handful of texts per kind recur and stay prepared in the connection's statement cache
/// ([`statement_is_cached`]):
/// * an `UPDATE … FROM (VALUES …)` repeats its last row (the same values again: a target row
///   is updated once, with the values it had);
/// * an `INSERT` selects its rows from the `VALUES`, each led by a marker value, and the
///   padding rows are all NULL: `head SELECT column2, …, column<n+1> FROM (VALUES (1, …), …,
///   (NULL, …)) WHERE column1 IS NOT NULL tail`. The `WHERE` also keeps SQLite's parser from
///   reading a following `ON CONFLICT` as part of a join (an upsert after a `SELECT` needs it).
fn values_statements<'a, T>(
    backend: Backend,
    head: &str,
    tail: &str,
    rows: &'a [T],
    mut bind: impl FnMut(&mut RowBinds, &'a T),
) -> Vec<(String, AnyArguments)> {
    let padded = backend == Backend::Sqlite;
    let marker = padded && head.trim_start().starts_with("INSERT");
    rows.chunks(ROWS_PER_STATEMENT)
        .map(|chunk| {
            let mut b = RowBinds::new();
            for row in chunk {
                if marker {
                    b.push_bind(1_i64);
                }
                bind(&mut b, row);
            }
            let per_row = b.n / chunk.len();
            debug_assert_eq!(
                per_row * chunk.len(),
                b.n,
                "rows bind different numbers of values"
            );
            let total = if padded {
                padded_rows(chunk.len())
            } else {
                chunk.len()
            };
            let last = &chunk[chunk.len() - 1];
            for _ in chunk.len()..total {
                if marker {
                    for _ in 0..per_row {
                        b.push_bind(None::<i64>);
                    }
                } else {
                    bind(&mut b, last);
                }
            }
            let sql = values_sql(backend, head, tail, total, per_row, marker);
            (sql, b.args)
        })
        .collect()
}

/// The text of one [`values_statements`] statement: `rows` rows of `per_row` placeholders
/// (`?` for SQLite, which looks every named `$N` up in a list while parsing — quadratic in a
/// 4,000-value statement, and that halved the call rate at 3,000 calls/s; `$1`, `$2`, … for
/// PostgreSQL). With `marker`, the first value of each row is the marker column the rows are
/// selected by.
fn values_sql(
    backend: Backend,
    head: &str,
    tail: &str,
    rows: usize,
    per_row: usize,
    marker: bool,
) -> String {
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * per_row * 4 + 64);
    sql.push_str(head);
    if marker {
        sql.push_str("SELECT ");
        for c in 2..=per_row {
            if c > 2 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "column{c}");
        }
        sql.push_str(" FROM (");
    }
    sql.push_str("VALUES ");
    let mut n = 0;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for v in 0..per_row {
            if v > 0 {
                sql.push_str(", ");
            }
            n += 1;
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    let _ = write!(sql, "${n}");
                }
            }
        }
        sql.push(')');
    }
    if marker {
        sql.push_str(") WHERE column1 IS NOT NULL");
    }
    sql.push_str(tail);
    sql
}

/// Whether statements of [`values_statements`] are kept prepared on `backend`.
fn statement_is_cached(backend: Backend) -> bool {
    backend == Backend::Sqlite
}

/// The row count a SQLite statement of `n` rows is padded to: the next of 1, 2, 3, 4, 6, 8,
/// 12, 16, 24, … (a power of two or one and a half times one), so at most a third of a
/// statement's rows are padding and about twenty texts per statement kind recur.
fn padded_rows(n: usize) -> usize {
    let p = n.next_power_of_two();
    let between = p / 2 + p / 4;
    if p >= 4 && n <= between { between } else { p }
}

/// The lead decisions of a batch, in the batch's transaction: one multi-row UPDATE for the
/// retries (new count, next attempt time) and one for the leads made final.
async fn apply_lead_updates(
    backend: Backend,
    tx: &mut AnyConnection,
    leads: &[LeadUpdate],
) -> sqlx::Result<()> {
    let retries: Vec<_> = leads
        .iter()
        .filter_map(|u| match u {
            LeadUpdate::Retry {
                lead_id,
                attempts,
                at,
            } => Some((*lead_id, *attempts as i64, rfc3339_ms(*at))),
            LeadUpdate::Final { .. } => None,
        })
        .collect();
    let finals: Vec<_> = leads
        .iter()
        .filter_map(|u| match u {
            LeadUpdate::Final {
                lead_id,
                attempts,
                disposition,
            } => Some((*lead_id, *attempts as i64, disposition.as_str())),
            LeadUpdate::Retry { .. } => None,
        })
        .collect();
    const BY_LEAD: &str = ") AS v WHERE leads.id = v.column1";
    execute_values(
        backend,
        tx,
        "UPDATE leads SET attempts = v.column2, next_attempt_at = v.column3 FROM (",
        BY_LEAD,
        &retries,
        |b, (id, n, at)| {
            b.push_bind(*id).push_bind(*n).push_bind(at.as_str());
        },
    )
    .await?;
    execute_values(
        backend,
        tx,
        "UPDATE leads SET status = 'final', attempts = v.column2,
             final_disposition = v.column3, next_attempt_at = NULL FROM (",
        BY_LEAD,
        &finals,
        |b, (id, n, d)| {
            b.push_bind(*id).push_bind(*n).push_bind(*d);
        },
    )
    .await?;
    Ok(())
}

/// Runs `head VALUES (…), (…) tail` for `rows` (see [`values_statements`]); returns the rows
/// affected. Every statement is a round trip (to sqlx's SQLite worker thread or to the
/// PostgreSQL server), so batches go as multi-row statements.
async fn execute_values<'a, T>(
    backend: Backend,
    conn: &mut AnyConnection,
    head: &str,
    tail: &str,
    rows: &'a [T],
    bind: impl FnMut(&mut RowBinds, &'a T),
) -> sqlx::Result<u64> {
    let mut affected = 0;
    for (sql, args) in values_statements(backend, head, tail, rows, bind) {
        affected += sqlx::query_with(AssertSqlSafe(sql), args)
            .persistent(statement_is_cached(backend))
            .execute(&mut *conn)
            .await?
            .rows_affected();
    }
    Ok(affected)
}

/// Which database a [`Store`] is on; gives the SQL of the functions the two spell differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite 3 (a file).
    Sqlite,
    /// PostgreSQL (13 or later).
    Postgres,
}

impl Backend {
    /// SQL for the text value of `key` in the JSON object held (as text) by column `expr`;
    /// NULL when absent. `key` must be a constant of this crate (it is written into the SQL).
    pub fn json_text(self, expr: &str, key: &str) -> String {
        match self {
            Backend::Sqlite => format!("json_extract({expr}, '$.{key}')"),
            Backend::Postgres => format!("(CAST({expr} AS jsonb) ->> '{key}')"),
        }
    }

    /// SQL for the number at `key` in the JSON object of column `expr`, as a double.
    pub fn json_number(self, expr: &str, key: &str) -> String {
        format!("CAST({} AS DOUBLE PRECISION)", self.json_text(expr, key))
    }

    /// SQL for the milliseconds (a double) from RFC 3339 text column `from` to `to`.
    pub fn ms_between(self, from: &str, to: &str) -> String {
        match self {
            // julianday() is a double of days: rounding gives back the whole milliseconds
            // the timestamps hold (5999.97 otherwise).
            Backend::Sqlite => {
                format!("ROUND((julianday({to}) - julianday({from})) * 86400000.0)")
            }
            Backend::Postgres => format!(
                "(CAST(EXTRACT(EPOCH FROM (CAST({to} AS timestamptz) - CAST({from} AS timestamptz))) \
                 AS DOUBLE PRECISION) * 1000)"
            ),
        }
    }
}

/// Process-wide SQLite settings, applied once, before the first SQLite connection of the
/// process opens (`sqlite3_config` is refused once SQLite is initialised):
/// - **memory statistics off** (`SQLITE_CONFIG_MEMSTATUS` = 0, as SQLite's own
///   `SQLITE_DEFAULT_MEMSTATUS=0` recommendation for speed). With them on, every SQLite
///   allocation takes a process-wide mutex to count itself; outdial reads no SQLite memory
///   statistics and sets no heap limit.
/// - **SQLite allocates from mimalloc** (`SQLITE_CONFIG_MALLOC`, [`SQLITE_MIMALLOC`]), the
///   allocator the rest of the process uses, instead of the C library's `malloc`, which was
///   about a sixth of the SQLite thread's samples in the store bench (`_int_malloc`,
///   `_int_free`, `malloc_consolidate`).
///
/// If SQLite was initialised already (something opened it first), nothing changes.
fn configure_sqlite() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `sqlite3_config(SQLITE_CONFIG_MEMSTATUS, int)` takes one int, and
        // `sqlite3_config(SQLITE_CONFIG_MALLOC, const sqlite3_mem_methods*)` one pointer to a
        // struct SQLite copies before returning. Both are called once, before this process's
        // first connection through the store (other openers wait on the `Once`); after
        // initialisation SQLite answers SQLITE_MISUSE and changes nothing.
        let methods = sqlite_mimalloc();
        let (stats, malloc) = unsafe {
            (
                libsqlite3_sys::sqlite3_config(
                    libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS,
                    0 as std::ffi::c_int,
                ),
                libsqlite3_sys::sqlite3_config(
                    libsqlite3_sys::SQLITE_CONFIG_MALLOC,
                    &methods as *const libsqlite3_sys::sqlite3_mem_methods,
                ),
            )
        };
        if stats != libsqlite3_sys::SQLITE_OK || malloc != libsqlite3_sys::SQLITE_OK {
            tracing::debug!(
                stats,
                malloc,
                "SQLite already initialised: its memory settings are unchanged"
            );
        }
    });
}

/// SQLite's memory routines on mimalloc (SQLite's `sqlite3_mem_methods`,
/// <https://sqlite.org/c3ref/mem_methods.html>): sizes in bytes; mimalloc's blocks are aligned
/// to at least 8 bytes as SQLite requires. SQLite keeps its own copy of the struct.
fn sqlite_mimalloc() -> libsqlite3_sys::sqlite3_mem_methods {
    libsqlite3_sys::sqlite3_mem_methods {
        xMalloc: Some(sqlite_malloc),
        xFree: Some(sqlite_free),
        xRealloc: Some(sqlite_realloc),
        xSize: Some(sqlite_size),
        xRoundup: Some(sqlite_roundup),
        xInit: Some(sqlite_mem_init),
        xShutdown: Some(sqlite_mem_shutdown),
        pAppData: std::ptr::null_mut(),
    }
}

use std::ffi::{c_int, c_void};

unsafe extern "C" {
    // mimalloc's extended API (the `libmimalloc-sys` static library the process links):
    // the usable size of a block, and the block size a request of `size` bytes gets.
    fn mi_usable_size(p: *const c_void) -> usize;
    fn mi_good_size(size: usize) -> usize;
    // Whether `p` lies in memory mimalloc manages (for the test that SQLite uses it).
    #[cfg(test)]
    fn mi_is_in_heap_region(p: *const c_void) -> bool;
}

unsafe extern "C" fn sqlite_malloc(n: c_int) -> *mut c_void {
    // SAFETY: any size may be asked of mimalloc; SQLite never asks for 0 or less.
    unsafe { libmimalloc_sys::mi_malloc(n.max(1) as usize) }
}

unsafe extern "C" fn sqlite_free(p: *mut c_void) {
    // SAFETY: `p` came from `sqlite_malloc`/`sqlite_realloc` (mimalloc) or is null.
    unsafe { libmimalloc_sys::mi_free(p) }
}

unsafe extern "C" fn sqlite_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    // SAFETY: as for `sqlite_free`; SQLite asks for a positive size.
    unsafe { libmimalloc_sys::mi_realloc(p, n.max(1) as usize) }
}

unsafe extern "C" fn sqlite_size(p: *mut c_void) -> c_int {
    // SAFETY: `p` came from mimalloc (or is null, which gives 0). SQLite's blocks are
    // far below 2 GiB (its own limit on one allocation is 2^31 - 256 bytes).
    let size = unsafe { mi_usable_size(p) };
    c_int::try_from(size).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn sqlite_roundup(n: c_int) -> c_int {
    // SAFETY: a pure function of the size.
    let size = unsafe { mi_good_size(n.max(0) as usize) };
    c_int::try_from(size).unwrap_or(n)
}

unsafe extern "C" fn sqlite_mem_init(_: *mut c_void) -> c_int {
    libsqlite3_sys::SQLITE_OK
}

unsafe extern "C" fn sqlite_mem_shutdown(_: *mut c_void) {}

/// The store handle (cheap to clone).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The SQLite file (None for PostgreSQL).
    file: Option<std::path::PathBuf>,
    /// The process lock on the SQLite file, once taken ([`Store::lock_process`]).
    lock: std::sync::Arc<std::sync::OnceLock<std::fs::File>>,
}

/// A lead that still needs dialling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLead {
    /// Row id.
    pub id: i64,
    /// Number to dial.
    pub number: String,
    /// Attempts already made that count towards `max_attempts`.
    pub attempts: u32,
    /// Not before this time (None: now).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Highest attempt number used so far (interrupted attempts included).
    pub last_attempt_no: u32,
    /// The lead's own time zone (the attribute named by `active_period`'s
    /// `lead_time_zone_attribute`), if any.
    pub time_zone: Option<String>,
}

pub use crate::campaign::core::LeadUpdate;

/// The node name of this process: `OUTDIAL_NODE`, else the host name. Attempts record it; a
/// restarted node recovers its own interrupted attempts and leaves other nodes' calls alone.
pub fn default_node() -> String {
    std::env::var("OUTDIAL_NODE")
        .ok()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "outdial".into())
}

/// An attempt to store before its INVITE is sent.
#[derive(Debug, Clone)]
pub struct NewAttempt<'a> {
    /// The lead.
    pub lead_id: i64,
    /// 1-based attempt number for the lead.
    pub attempt_no: u32,
    /// The Call-ID the INVITE will carry.
    pub call_id: &'a str,
    /// When it was started (the rate limiter's permit).
    pub started_at: DateTime<Utc>,
}

/// When a lease taken or renewed at `now` for `ttl` runs out, as stored (RFC 3339, ms);
/// a `ttl` too large to add saturates at a year.
fn lease_expiry(now: DateTime<Utc>, ttl: std::time::Duration) -> String {
    let ttl = chrono::Duration::from_std(ttl.min(std::time::Duration::from_secs(365 * 86_400)))
        .unwrap_or(chrono::Duration::days(365));
    rfc3339_ms(now + ttl)
}

/// A token as `outdial token list` shows it: (id, name, role, agent, created at, revoked at).
pub type TokenRow = (i64, String, String, Option<String>, String, Option<String>);

/// The run lease a process holds on a campaign (per node): see [`Store::acquire_lease`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunLease {
    /// The campaign.
    pub campaign_id: i64,
    /// The node name ([`default_node`]).
    pub node: String,
    /// This process: `node/pid/start time` (RFC 3339, ms).
    pub owner: String,
}

/// A live lease of another process on the campaign: the run is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the campaign is already being dialled by {owner} (since {since}); its lease expires at \
     {expires_at} unless renewed — stop that process first, or if it died, start again after \
     that time"
)]
pub struct LeaseHeld {
    /// The owner id (`node/pid/start time`).
    pub owner: String,
    /// When it took the lease (RFC 3339).
    pub since: String,
    /// When the lease runs out without a renewal (RFC 3339).
    pub expires_at: String,
}

/// Outcome of importing a call list into a campaign.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// New leads stored.
    pub inserted: u64,
    /// Leads already in the campaign (same number), left untouched.
    pub already_present: u64,
}

impl Store {
    /// Opens the store at `location`: a `postgres://` or `postgresql://` URL, or else a
    /// SQLite file path (created with its directory when missing; a `sqlite://` prefix is
    /// allowed), and applies the migrations.
    /// Errors: the file cannot be created or opened, the server cannot be reached or refuses
    /// the login, or a migration fails.
    pub async fn open(location: &Path) -> anyhow::Result<Self> {
        Self::connect(&location.to_string_lossy()).await
    }

    /// [`Store::open`] from a string.
    pub async fn connect(location: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        if is_url(location) {
            let pool = AnyPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(std::time::Duration::from_secs(10))
                .connect(location)
                .await
                .with_context(|| format!("connecting to {}", redact_url(location)))?;
            sqlx::migrate!("./migrations/postgres")
                .run(&pool)
                .await
                .context("applying database migrations")?;
            return Ok(Self {
                pool,
                backend: Backend::Postgres,
                file: None,
                lock: Default::default(),
            });
        }
        configure_sqlite();
        let path = Path::new(location.strip_prefix("sqlite://").unwrap_or(location));
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating directory {}", dir.display()))?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .with_context(|| format!("opening database {}", path.display()))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .context("applying database migrations")?;
        Ok(Self {
            pool,
            backend: Backend::Sqlite,
            file: Some(path.to_path_buf()),
            lock: Default::default(),
        })
    }

    /// Claims the SQLite file for this process alone, for as long as the store lives: an
    /// exclusive advisory lock (`flock`) on `<file>.lock`, which holds this process's id and
    /// start time. `outdial run` and `outdial serve` take it before dialling, so two
    /// processes never dial from one SQLite file; readers (`report`, `stats`) do not need it.
    /// A no-op on PostgreSQL (several nodes share one server, each with its own run leases).
    /// Errors: another live process holds the lock (its id and start time are named), or the
    /// lock file cannot be created.
    pub fn lock_process(&self) -> anyhow::Result<()> {
        let Some(db) = &self.file else {
            return Ok(());
        };
        if self.lock.get().is_some() {
            return Ok(());
        }
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        let path = std::path::PathBuf::from(name);
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("creating lock file {}", path.display()))?;
        match f.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                anyhow::bail!(
                    "database {} is in use by another outdial process ({}): two processes must \
                     not dial from one SQLite file — stop it first, or use PostgreSQL for \
                     several dialler nodes",
                    db.display(),
                    holder.trim()
                );
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        use std::io::Write as _;
        f.set_len(0)?;
        write!(
            f,
            "pid {} on {}, started {}",
            std::process::id(),
            default_node(),
            rfc3339_ms(Utc::now())
        )?;
        f.flush()?;
        let _ = self.lock.set(f);
        Ok(())
    }

    /// The pool, for reports.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Creates the campaign or, if one with this name exists, stores the new settings and
    /// marks it active again (a `paused` or `archived` one — the service's states — keeps its
    /// state). Returns its id.
    pub async fn upsert_campaign(&self, name: &str, config_json: &str) -> anyhow::Result<i64> {
        let now = rfc3339_ms(Utc::now());
        let row = sqlx::query(
            "INSERT INTO campaigns (name, config, state, created_at, updated_at)
             VALUES ($1, $2, 'active', $3, $3)
             ON CONFLICT(name) DO UPDATE SET config = excluded.config,
                 state = CASE WHEN campaigns.state IN ('paused', 'archived')
                              THEN campaigns.state ELSE 'active' END,
                 updated_at = excluded.updated_at
             RETURNING id",
        )
        .bind(name)
        .bind(config_json)
        .bind(&now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get(0))
    }

    /// Marks a campaign completed.
    pub async fn complete_campaign(&self, id: i64) -> anyhow::Result<()> {
        self.set_campaign_state(id, "completed").await
    }

    /// Adds leads to a campaign in one transaction; numbers already present are skipped.
    pub async fn import_leads(
        &self,
        campaign_id: i64,
        leads: &[NewLead],
    ) -> anyhow::Result<ImportCounts> {
        let attributes = leads
            .iter()
            .map(|l| serde_json::to_string(&l.attributes))
            .collect::<Result<Vec<_>, _>>()?;
        let rows: Vec<(&NewLead, &String)> = leads.iter().zip(&attributes).collect();
        let mut tx = self.pool.begin().await?;
        // A number already in the campaign (or twice in the file) is skipped by ON CONFLICT
        // and counted as already present.
        let inserted = execute_values(
            self.backend,
            &mut tx,
            "INSERT INTO leads (campaign_id, number, raw_number, attributes, source_line) ",
            " ON CONFLICT(campaign_id, number) DO NOTHING",
            &rows,
            |b, (l, attrs)| {
                b.push_bind(campaign_id)
                    .push_bind(&l.number)
                    .push_bind(&l.raw_number)
                    .push_bind(attrs.as_str())
                    .push_bind(l.line as i64);
            },
        )
        .await?;
        tx.commit().await?;
        Ok(ImportCounts {
            inserted,
            already_present: rows.len() as u64 - inserted,
        })
    }

    /// Takes the run lease of campaign `campaign_id` for node `node`, valid `ttl` from now: a
    /// new lease, or the old one of an owner that stopped renewing it (expired) — or, when
    /// this process holds the SQLite file's lock ([`Store::lock_process`]), whatever lease is
    /// there (its owner cannot be alive). The caller
    /// renews it with [`Store::renew_lease`] well within `ttl` and gives it back with
    /// [`Store::release_lease`]. Errors: [`LeaseHeld`] (inside the `anyhow::Error`) when a
    /// live lease belongs to another owner; database failures.
    pub async fn acquire_lease(
        &self,
        campaign_id: i64,
        node: &str,
        ttl: std::time::Duration,
    ) -> anyhow::Result<RunLease> {
        let now = Utc::now();
        let owner = format!("{node}/{}/{}", std::process::id(), rfc3339_ms(now));
        // A lease that expired by then is taken over. Holding the SQLite file's process lock
        // proves no other process dials from this store: any lease left there is a dead
        // process's, taken over whatever its expiry.
        let take_over_until = if self.lock.get().is_some() {
            "9999-12-31T23:59:59.999Z".to_string()
        } else {
            rfc3339_ms(now)
        };
        sqlx::query(
            "INSERT INTO run_leases (campaign_id, node, owner, started_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (campaign_id, node) DO UPDATE
               SET owner = excluded.owner, started_at = excluded.started_at,
                   expires_at = excluded.expires_at
               WHERE run_leases.expires_at <= $6",
        )
        .bind(campaign_id)
        .bind(node)
        .bind(&owner)
        .bind(rfc3339_ms(now))
        .bind(lease_expiry(now, ttl))
        .bind(take_over_until)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(
            "SELECT owner, started_at, expires_at FROM run_leases
             WHERE campaign_id = $1 AND node = $2",
        )
        .bind(campaign_id)
        .bind(node)
        .fetch_one(&self.pool)
        .await?;
        let (held_by, since, until): (String, String, String) =
            (row.get(0), row.get(1), row.get(2));
        if held_by != owner {
            return Err(LeaseHeld {
                owner: held_by,
                since,
                expires_at: until,
            }
            .into());
        }
        Ok(RunLease {
            campaign_id,
            node: node.to_string(),
            owner,
        })
    }

    /// Extends our lease to `ttl` from now. Returns false when the lease is no longer ours
    /// (it expired and another process took it over): the caller must stop dialling.
    pub async fn renew_lease(
        &self,
        lease: &RunLease,
        ttl: std::time::Duration,
    ) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "UPDATE run_leases SET expires_at = $4
             WHERE campaign_id = $1 AND node = $2 AND owner = $3",
        )
        .bind(lease.campaign_id)
        .bind(&lease.node)
        .bind(&lease.owner)
        .bind(lease_expiry(Utc::now(), ttl))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Gives the lease back (at the end of a run): the next run need not wait for it.
    pub async fn release_lease(&self, lease: &RunLease) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM run_leases WHERE campaign_id = $1 AND node = $2 AND owner = $3")
            .bind(lease.campaign_id)
            .bind(&lease.node)
            .bind(&lease.owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Closes attempts left `dialing` by owners that are gone — whose run lease expired or
    /// was taken over (and, from before leases, those of node `node` or of no node): they
    /// become `interrupted` (not counted towards `max_attempts`) and their leads stay
    /// pending. Attempts of an owner whose lease is live — another process dialling now —
    /// are left alone. Returns how many.
    pub async fn recover_interrupted(&self, campaign_id: i64, node: &str) -> anyhow::Result<u64> {
        let now = rfc3339_ms(Utc::now());
        let r = sqlx::query(
            "UPDATE attempts SET state = 'ended', disposition = 'interrupted',
                 detail = 'process_stopped', ended_at = $2
             WHERE campaign_id = $1 AND state = 'dialing'
               AND (owner IS NOT NULL OR node = $3 OR node IS NULL)
               AND NOT EXISTS (SELECT 1 FROM run_leases r
                               WHERE r.campaign_id = $1 AND r.owner = attempts.owner
                                 AND r.expires_at > $2)",
        )
        .bind(campaign_id)
        .bind(now)
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Every lead of the campaign still pending, but those another node is calling now (an
    /// attempt still `dialing`: call this after [`Store::recover_interrupted`]).
    pub async fn pending_leads(
        &self,
        campaign_id: i64,
        tz_attribute: Option<&str>,
    ) -> anyhow::Result<Vec<PendingLead>> {
        // Read in pages by id: a whole list fetched at once held every row twice (SQLite's
        // copies and sqlx's) at the peak, about 1 KiB per lead, and the allocator kept that
        // memory for the rest of the run.
        const PAGE: i64 = 5_000;
        let mut out = Vec::new();
        let mut after = 0i64;
        loop {
            // The lead's time zone attribute: a path for SQLite's json_extract, the key for
            // PostgreSQL's ->> (bound, never written into the SQL).
            let (tz_expr, tz_key) = match self.backend {
                Backend::Sqlite => (
                    "json_extract(l.attributes, $4)",
                    tz_attribute.map(|a| format!("$.\"{}\"", a.replace('"', ""))),
                ),
                Backend::Postgres => (
                    "(CAST(l.attributes AS jsonb) ->> $4)",
                    tz_attribute.map(str::to_string),
                ),
            };
            let sql = format!(
                "SELECT l.id, l.number, l.attempts, l.next_attempt_at,
                        COALESCE((SELECT MAX(a.attempt_no) FROM attempts a WHERE a.lead_id = l.id), 0),
                        CASE WHEN $4 IS NULL THEN NULL ELSE {tz_expr} END
                 FROM leads l WHERE l.campaign_id = $1 AND l.status = 'pending' AND l.id > $2
                   AND NOT EXISTS (SELECT 1 FROM attempts d WHERE d.lead_id = l.id AND d.state = 'dialing')
                 ORDER BY l.id LIMIT $3"
            );
            let rows = sqlx::query(AssertSqlSafe(sql))
                .bind(campaign_id)
                .bind(after)
                .bind(PAGE)
                .bind(tz_key)
                .fetch_all(&self.pool)
                .await?;
            let n = rows.len() as i64;
            for r in rows {
                let next: Option<String> = r.get(3);
                let lead = PendingLead {
                    id: r.get(0),
                    number: r.get(1),
                    attempts: r.get::<i64, _>(2) as u32,
                    next_attempt_at: next.as_deref().map(parse_rfc3339).transpose()?,
                    last_attempt_no: r.get::<i64, _>(4) as u32,
                    time_zone: r.get(5),
                };
                after = lead.id;
                out.push(lead);
            }
            if n < PAGE {
                return Ok(out);
            }
        }
    }

    /// Makes the campaign's final leads of `dispositions` (snake_case names) pending again,
    /// with their attempt count reset (they get `max_attempts` afresh; earlier attempts stay
    /// on record). Returns how many. Errors: database failures (nothing changes then).
    pub async fn recycle_leads(
        &self,
        campaign_id: i64,
        dispositions: &[String],
    ) -> anyhow::Result<u64> {
        let mut tx = self.pool.begin().await?;
        let mut n = 0;
        for d in dispositions {
            n += sqlx::query(
                "UPDATE leads SET status = 'pending', final_disposition = NULL, attempts = 0, \
                 next_attempt_at = NULL \
                 WHERE campaign_id = $1 AND status = 'final' AND final_disposition = $2",
            )
            .bind(campaign_id)
            .bind(d)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Number of leads of the campaign, and of those already final.
    pub async fn lead_counts(&self, campaign_id: i64) -> anyhow::Result<(u64, u64)> {
        let r = sqlx::query(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 'final' THEN 1 ELSE 0 END), 0)
             FROM leads WHERE campaign_id = $1",
        )
        .bind(campaign_id)
        .fetch_one(&self.pool)
        .await?;
        Ok((r.get::<i64, _>(0) as u64, r.get::<i64, _>(1) as u64))
    }

    /// Writes several attempts of the lease's owner in one transaction before their INVITEs are
    /// sent. Returns their ids in order, `None` for an attempt another node stored first (the
    /// same attempt number of the lead: that node is calling it; skip the lead). One
    /// multi-row INSERT per [`ROWS_PER_STATEMENT`] attempts: every statement is a round trip
    /// to sqlx's SQLite worker thread, and at thousands of calls per second those hand-offs,
    /// not SQLite, were the cost (docs/benchmarks.md).
    pub async fn insert_attempts(
        &self,
        lease: &RunLease,
        rows: &[NewAttempt<'_>],
    ) -> anyhow::Result<Vec<Option<i64>>> {
        let (campaign_id, node, owner) = (lease.campaign_id, &lease.node, &lease.owner);
        let mut tx = self.pool.begin().await?;
        let mut by_call: HashMap<String, i64> = HashMap::with_capacity(rows.len());
        let statements = values_statements(
            self.backend,
            "INSERT INTO attempts (campaign_id, lead_id, attempt_no, call_id, state, started_at, node, owner) ",
            " ON CONFLICT DO NOTHING RETURNING id, call_id",
            rows,
            |b, r| {
                b.push_bind(campaign_id)
                    .push_bind(r.lead_id)
                    .push_bind(r.attempt_no as i64)
                    .push_bind(r.call_id)
                    .push_bind("dialing")
                    .push_bind(rfc3339_ms(r.started_at))
                    .push_bind(node.as_str())
                    .push_bind(owner.as_str());
            },
        );
        for (sql, args) in statements {
            for row in sqlx::query_with(AssertSqlSafe(sql), args)
                .persistent(statement_is_cached(self.backend))
                .fetch_all(&mut *tx)
                .await?
            {
                by_call.insert(row.get(1), row.get(0));
            }
        }
        tx.commit().await?;
        Ok(rows
            .iter()
            .map(|r| by_call.get(r.call_id).copied())
            .collect())
    }

    /// Stores an inbound call of campaign `campaign_id` from `number` (as the caller's From
    /// gave it) before its events: the campaign's lead with that number if there is one,
    /// else a new lead made final at once (`answered`, attribute `source` = `inbound`: it is
    /// never dialled), and an attempt with `direction` = `inbound`, numbered below zero
    /// (-1, -2, … per lead, so outbound attempt numbers are untouched). Returns (lead id,
    /// attempt id, attempt number). Errors: database failures.
    pub async fn insert_inbound_attempt(
        &self,
        campaign_id: i64,
        number: &str,
        call_id: &str,
        started_at: DateTime<Utc>,
        owner: Option<&RunLease>,
    ) -> anyhow::Result<(i64, i64, i32)> {
        let mut tx = self.pool.begin().await?;
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM leads WHERE campaign_id = $1 AND number = $2")
                .bind(campaign_id)
                .bind(number)
                .fetch_optional(&mut *tx)
                .await?;
        let lead_id = match existing {
            Some(id) => id,
            None => {
                sqlx::query_scalar(
                    "INSERT INTO leads (campaign_id, number, raw_number, attributes, status, \
                     final_disposition) VALUES ($1, $2, $2, '{\"source\":\"inbound\"}', 'final', \
                     'answered') RETURNING id",
                )
                .bind(campaign_id)
                .bind(number)
                .fetch_one(&mut *tx)
                .await?
            }
        };
        let lowest: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(attempt_no) FROM attempts WHERE lead_id = $1 AND attempt_no < 0",
        )
        .bind(lead_id)
        .fetch_one(&mut *tx)
        .await?;
        let attempt_no = lowest.unwrap_or(0) - 1;
        let attempt_id: i64 = sqlx::query_scalar(
            "INSERT INTO attempts (campaign_id, lead_id, attempt_no, call_id, state, started_at, \
             node, owner, direction) VALUES ($1, $2, $3, $4, 'dialing', $5, $6, $7, 'inbound') \
             RETURNING id",
        )
        .bind(campaign_id)
        .bind(lead_id)
        .bind(attempt_no)
        .bind(call_id)
        .bind(rfc3339_ms(started_at))
        .bind(owner.map(|l| l.node.clone()))
        .bind(owner.map(|l| l.owner.clone()))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((lead_id, attempt_id, attempt_no as i32))
    }

    /// Stores a batch of call events, updates their attempts, and applies the lead decisions
    /// taken on the batch's `terminated` events — all in one transaction, with multi-row
    /// statements (an INSERT for the events, an `UPDATE … FROM (VALUES …)` per kind of
    /// attempt or lead change) rather than one statement per row.
    pub async fn record(
        &self,
        clock: &WallClock,
        events: &[CallEvent],
        leads: &[LeadUpdate],
    ) -> anyhow::Result<()> {
        struct Row<'a> {
            ev: &'a CallEvent,
            at: String,
            data: String,
        }
        let mut rows = Vec::with_capacity(events.len());
        for ev in events {
            rows.push(Row {
                ev,
                at: rfc3339_ms(clock.to_utc(ev.at)),
                data: serde_json::to_string(&ev.kind)?,
            });
        }
        // The first ringing/answered time per attempt (the COALESCE keeps an earlier batch's),
        // and each attempt's end.
        let mut ringing: Vec<(i64, &str)> = Vec::new();
        let mut answered: Vec<(i64, &str)> = Vec::new();
        let mut ended: Vec<(&Row<'_>, &CallEventKind)> = Vec::new();
        let mut dispositions: Vec<(i64, &str)> = Vec::new();
        let mut seen_ringing = HashSet::new();
        let mut seen_answered = HashSet::new();
        for r in &rows {
            let id = r.ev.attempt.attempt_id;
            match &r.ev.kind {
                CallEventKind::Ringing { .. } | CallEventKind::EarlyMedia { .. }
                    if seen_ringing.insert(id) =>
                {
                    ringing.push((id, &r.at))
                }
                CallEventKind::Answered { .. } if seen_answered.insert(id) => {
                    answered.push((id, &r.at))
                }
                k @ CallEventKind::Terminated { .. } => ended.push((r, k)),
                CallEventKind::AgentDisposition { disposition, .. } => {
                    dispositions.push((id, disposition))
                }
                _ => {}
            }
        }
        let mut tx = self.pool.begin().await?;
        execute_values(
            self.backend,
            &mut tx,
            "INSERT INTO call_events (attempt_id, call_id, kind, at, data) ",
            "",
            &rows,
            |b, r| {
                b.push_bind(r.ev.attempt.attempt_id)
                    .push_bind(&r.ev.call_id)
                    .push_bind(r.ev.kind.name())
                    .push_bind(&r.at)
                    .push_bind(&r.data);
            },
        )
        .await?;
        const BY_ATTEMPT: &str = ") AS v WHERE attempts.id = v.column1";
        for (id, d) in dispositions {
            sqlx::query("UPDATE attempts SET agent_disposition = $1 WHERE id = $2")
                .bind(d)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        for (list, column) in [(&ringing, "ringing_at"), (&answered, "answered_at")] {
            let head =
                format!("UPDATE attempts SET {column} = COALESCE({column}, v.column2) FROM (");
            execute_values(
                self.backend,
                &mut tx,
                &head,
                BY_ATTEMPT,
                list,
                |b, (id, at)| {
                    b.push_bind(*id).push_bind(*at);
                },
            )
            .await?;
        }
        execute_values(
            self.backend,
            &mut tx,
            "UPDATE attempts SET state = 'ended', sip_status = v.column2,
                 reason_phrase = v.column3, q850_cause = v.column4, hangup_by = v.column5,
                 disposition = v.column6, detail = v.column7, ended_at = v.column8 FROM (",
            BY_ATTEMPT,
            &ended,
            |b, (r, k)| {
                if let CallEventKind::Terminated {
                    sip_status,
                    reason_phrase,
                    q850_cause,
                    hangup_by,
                    disposition,
                    detail,
                    ..
                } = k
                {
                    b.push_bind(r.ev.attempt.attempt_id)
                        .push_bind(sip_status.map(i64::from))
                        .push_bind(reason_phrase.clone())
                        .push_bind(q850_cause.map(i64::from))
                        .push_bind(hangup_by.as_str())
                        .push_bind(disposition.as_str())
                        .push_bind(detail.as_str())
                        .push_bind(r.at.clone());
                }
            },
        )
        .await?;
        apply_lead_updates(self.backend, &mut tx, leads).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores (or replaces) an agent's HA1 values for `realm`.
    /// Errors: database failures.
    pub async fn upsert_agent(
        &self,
        id: &str,
        realm: &str,
        ha1: &crate::acd::Ha1,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO agents (id, realm, ha1_md5, ha1_sha256, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET realm = excluded.realm, ha1_md5 = excluded.ha1_md5, \
             ha1_sha256 = excluded.ha1_sha256, updated_at = excluded.updated_at",
        )
        .bind(id)
        .bind(realm)
        .bind(&ha1.md5)
        .bind(&ha1.sha256)
        .bind(rfc3339_ms(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An agent's HA1 values, if stored for `realm` (HA1 depends on the realm).
    /// Errors: database failures.
    pub async fn agent_ha1(
        &self,
        id: &str,
        realm: &str,
    ) -> anyhow::Result<Option<crate::acd::Ha1>> {
        let row =
            sqlx::query("SELECT ha1_md5, ha1_sha256 FROM agents WHERE id = $1 AND realm = $2")
                .bind(id)
                .bind(realm)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| crate::acd::Ha1 {
            md5: r.get(0),
            sha256: r.get(1),
        }))
    }

    /// Stores agent state changes.
    /// Errors: database failures.
    pub async fn record_agent_events(
        &self,
        clock: &WallClock,
        events: &[crate::events::AgentEvent],
    ) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        execute_values(
            self.backend,
            &mut tx,
            "INSERT INTO agent_events (agent, state, reason, call_id, at) ",
            "",
            events,
            |b, e| {
                b.push_bind(e.agent.clone())
                    .push_bind(e.state.as_str())
                    .push_bind(e.reason.to_string())
                    .push_bind(e.call_id.clone())
                    .push_bind(rfc3339_ms(clock.to_utc(e.at)));
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores events of campaign `campaign_id` (auto-pause and its release).
    /// Errors: database failures.
    pub async fn record_campaign_events(
        &self,
        clock: &WallClock,
        campaign_id: i64,
        events: &[crate::events::CampaignEvent],
    ) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let rows = events
            .iter()
            .map(|e| {
                Ok((
                    e.kind.name(),
                    rfc3339_ms(clock.to_utc(e.at)),
                    serde_json::to_string(&e.kind)?,
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut tx = self.pool.begin().await?;
        execute_values(
            self.backend,
            &mut tx,
            "INSERT INTO campaign_events (campaign_id, kind, at, data) ",
            "",
            &rows,
            |b, (kind, at, data)| {
                b.push_bind(campaign_id)
                    .push_bind(*kind)
                    .push_bind(at.as_str())
                    .push_bind(data.as_str());
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A campaign's events in order: (time, the event as JSON text).
    /// Errors: database failures.
    pub async fn campaign_events(&self, campaign_id: i64) -> anyhow::Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT at, data FROM campaign_events WHERE campaign_id = $1 ORDER BY id",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Agent state changes in order: (agent, state, reason, call id, time).
    /// Errors: database failures.
    pub async fn agent_events(
        &self,
    ) -> anyhow::Result<Vec<(String, String, String, Option<String>, String)>> {
        let rows =
            sqlx::query("SELECT agent, state, reason, call_id, at FROM agent_events ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect())
    }

    /// Stores a new API token (its SHA-256 only) for `role` (and the agent an `agent` token
    /// acts as). Errors: database failures.
    pub async fn create_token(
        &self,
        name: &str,
        role: &str,
        agent: Option<&str>,
        token: &str,
    ) -> anyhow::Result<i64> {
        let id = sqlx::query(
            "INSERT INTO api_tokens (name, role, agent_id, token_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(name)
        .bind(role)
        .bind(agent)
        .bind(token_hash(token))
        .bind(rfc3339_ms(Utc::now()))
        .fetch_one(&self.pool)
        .await?
        .get(0);
        Ok(id)
    }

    /// Every token: (id, name, role, agent, created at, revoked at), oldest first — never the
    /// token or its hash. Errors: database failures.
    pub async fn tokens(&self) -> anyhow::Result<Vec<TokenRow>> {
        Ok(sqlx::query_as(
            "SELECT id, name, role, agent_id, created_at, revoked_at FROM api_tokens ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Revokes token `id` (it stops working at once). Returns false when there is no live
    /// token with that id. Errors: database failures.
    pub async fn revoke_token(&self, id: i64) -> anyhow::Result<bool> {
        Ok(sqlx::query(
            "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .bind(rfc3339_ms(Utc::now()))
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0)
    }

    /// The role and agent of a live (not revoked) token. Errors: database failures.
    pub async fn token_role(
        &self,
        token: &str,
    ) -> anyhow::Result<Option<(String, Option<String>)>> {
        let row = sqlx::query(
            "SELECT role, agent_id FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash(token))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// The id of a campaign by name.
    pub async fn campaign_id(&self, name: &str) -> anyhow::Result<Option<i64>> {
        Ok(sqlx::query("SELECT id FROM campaigns WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.get(0)))
    }

    /// Every campaign, `(id, name)`, oldest first.
    pub async fn campaigns(&self) -> anyhow::Result<Vec<(i64, String)>> {
        Ok(sqlx::query("SELECT id, name FROM campaigns ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }
}

/// True when `location` is a PostgreSQL URL (`postgres://` or `postgresql://`), not a file.
pub fn is_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// `url` with its password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Hex SHA-256 of an API token (what the store keeps).
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(n: &str, line: u64) -> NewLead {
        NewLead {
            number: n.into(),
            raw_number: n.into(),
            attributes: [("tag".to_string(), format!("l{line}"))].into(),
            line,
        }
    }

    #[tokio::test]
    async fn sqlite_allocates_from_mimalloc_once_a_store_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let _store = Store::open(&dir.path().join("t.db")).await.unwrap();
        // SAFETY: a block from SQLite's allocator, given back to it; the region check only
        // compares the address with mimalloc's segments.
        unsafe {
            let p = libsqlite3_sys::sqlite3_malloc(100);
            assert!(!p.is_null());
            assert!(mi_is_in_heap_region(p), "SQLite's block is not mimalloc's");
            assert!(libsqlite3_sys::sqlite3_msize(p) >= 100);
            libsqlite3_sys::sqlite3_free(p);
        }
    }

    #[tokio::test]
    async fn import_counts_new_and_repeated_numbers_across_statements() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let id = store.upsert_campaign("c", "{}").await.unwrap();
        // More rows than one statement holds and than one page of pending leads, with a
        // number repeated inside the file.
        let mut leads: Vec<NewLead> = (0..6_000)
            .map(|i| lead(&format!("+1415555{i:04}"), i + 2))
            .collect();
        leads.push(lead("+14155550007", 6_100));
        let c = store.import_leads(id, &leads).await.unwrap();
        assert_eq!((c.inserted, c.already_present), (6_000, 1));
        // Importing the same list again changes nothing.
        let c = store.import_leads(id, &leads[..700]).await.unwrap();
        assert_eq!((c.inserted, c.already_present), (0, 700));
        let pending = store.pending_leads(id, None).await.unwrap();
        assert_eq!(pending.len(), 6_000);
        assert_eq!(pending[0].number, "+14155550000");
        assert_eq!(pending[5_999].number, "+14155555999");
        assert!(pending.windows(2).all(|w| w[0].id < w[1].id));
        // The first row of a repeated number wins (its attributes are kept).
        let attrs: String =
            sqlx::query_scalar("SELECT attributes FROM leads WHERE number = '+14155550007'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(attrs, r#"{"tag":"l9"}"#);
    }

    #[test]
    fn statements_are_padded_to_few_row_counts() {
        let counts: Vec<usize> = (1..=13).map(padded_rows).collect();
        assert_eq!(counts, [1, 2, 3, 4, 6, 6, 8, 8, 12, 12, 12, 12, 16]);
        assert_eq!(padded_rows(500), 512);
        assert_eq!(padded_rows(384), 384);
        assert_eq!(padded_rows(385), 512);
        for n in 1..=ROWS_PER_STATEMENT {
            let p = padded_rows(n);
            assert!(p >= n && p * 2 <= n * 3 + 1, "{n} → {p}");
        }
    }

    /// Every row count from 1 to 40, through the padded SQLite statements: an INSERT stores
    /// exactly its rows (no NULL padding row), an UPDATE changes exactly its rows.
    #[tokio::test]
    async fn padded_sqlite_statements_write_exactly_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let id = store.upsert_campaign("c", "{}").await.unwrap();
        let mut next = 0u64;
        for n in 1..=40u64 {
            let leads: Vec<NewLead> = (next..next + n)
                .map(|i| lead(&format!("+1415555{i:04}"), i + 2))
                .collect();
            next += n;
            let c = store.import_leads(id, &leads).await.unwrap();
            assert_eq!((c.inserted, c.already_present), (n, 0), "{n} rows");
            let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM leads")
                .fetch_one(store.pool())
                .await
                .unwrap();
            assert_eq!(stored as u64, next, "after {n} rows");
        }
        let pending = store.pending_leads(id, None).await.unwrap();
        assert_eq!(pending.len() as u64, next);
        // Make the first n leads final, n = 1..=20 in turn, in padded UPDATEs.
        for n in 1..=20usize {
            let updates: Vec<LeadUpdate> = pending[..n]
                .iter()
                .map(|l| LeadUpdate::Final {
                    lead_id: l.id,
                    attempts: n as u32,
                    disposition: crate::events::disposition::Disposition::Busy,
                })
                .collect();
            let mut tx = store.pool().begin().await.unwrap();
            apply_lead_updates(store.backend, &mut tx, &updates)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            let finals: Vec<(i64, i64)> =
                sqlx::query_as("SELECT id, attempts FROM leads WHERE status = 'final' ORDER BY id")
                    .fetch_all(store.pool())
                    .await
                    .unwrap();
            assert_eq!(finals.len(), n, "after {n} updates");
            assert!(finals.iter().all(|(_, a)| *a == n as i64), "{finals:?}");
        }
        let nulls: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM leads WHERE number IS NULL")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(nulls, 0);
    }
}
