//! `meta.sqlite`: the server's small relational state (tokens, saved
//! searches, alert rules and their state, the notification outbox and its
//! delivery history), with versioned schema migrations.

use std::path::Path;

use rusqlite::Connection;

/// Migrations in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: API tokens, stored as SHA-256 hashes only.
    "CREATE TABLE tokens (
        id          INTEGER PRIMARY KEY,
        hash        TEXT NOT NULL UNIQUE,
        scopes      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        revoked_at  INTEGER
    );",
    // 2: saved searches, alert rules with their evaluation state, and the
    // outbox of deliveries with every attempt.
    "CREATE TABLE saved_searches (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        query       TEXT NOT NULL,
        range       TEXT,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE alert_rules (
        id              INTEGER PRIMARY KEY,
        search_id       INTEGER NOT NULL REFERENCES saved_searches(id),
        name            TEXT NOT NULL,
        kind            TEXT NOT NULL,
        interval_secs   INTEGER NOT NULL,
        window_secs     INTEGER NOT NULL,
        threshold       INTEGER NOT NULL,
        samples         INTEGER NOT NULL,
        enabled         INTEGER NOT NULL,
        muted_until_ms  INTEGER,
        channels        TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        version         INTEGER NOT NULL DEFAULT 1,
        status          TEXT NOT NULL DEFAULT 'ok',
        watermark_id    INTEGER NOT NULL DEFAULT 0,
        next_eval_ms    INTEGER NOT NULL DEFAULT 0,
        last_fired_ms   INTEGER
    );
    CREATE TABLE deliveries (
        id              INTEGER PRIMARY KEY,
        delivery_id     TEXT NOT NULL UNIQUE,
        rule_id         INTEGER NOT NULL,
        event           TEXT NOT NULL,
        count           INTEGER NOT NULL,
        channel         TEXT NOT NULL,
        payload         TEXT NOT NULL,
        status          TEXT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL,
        created_at      INTEGER NOT NULL
    );
    CREATE INDEX deliveries_due ON deliveries(status, next_attempt_ms);
    CREATE INDEX deliveries_rule ON deliveries(rule_id, id);
    CREATE TABLE delivery_attempts (
        id           INTEGER PRIMARY KEY,
        delivery     INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
        at_ms        INTEGER NOT NULL,
        outcome      TEXT NOT NULL,
        status_code  INTEGER,
        error        TEXT
    );
    CREATE INDEX delivery_attempts_delivery ON delivery_attempts(delivery);",
    // 3: metric rules: their limit, and the groups firing.
    "ALTER TABLE alert_rules ADD COLUMN above REAL;
    ALTER TABLE alert_rules ADD COLUMN below REAL;
    ALTER TABLE alert_rules ADD COLUMN firing_groups TEXT NOT NULL DEFAULT '[]';",
];

/// Opens (creating if needed) the metadata database and brings its schema
/// up to date.
pub fn open(data_dir: &Path) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(data_dir.join("meta.sqlite"))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let applied: usize = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (number, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", number + 1)?;
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_run_once() {
        let dir = tempfile::tempdir().unwrap();
        drop(super::open(dir.path()).unwrap());
        let conn = super::open(dir.path()).unwrap();
        let version: usize = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, super::MIGRATIONS.len());
    }
}
