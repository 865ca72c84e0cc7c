//! `meta.sqlite`: the server's small relational state (tokens for now),
//! with versioned schema migrations.

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
];

/// Opens (creating if needed) the metadata database and brings its schema
/// up to date.
pub fn open(data_dir: &Path) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(data_dir.join("meta.sqlite"))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
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
