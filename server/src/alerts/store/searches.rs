//! Saved searches: named queries that rules count over.

use loghound_shared::api::{SavedSearch, SavedSearchInput};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::{Store, StoreError};

impl Store {
    /// Creates a saved search.
    pub fn create_search(
        &self,
        input: &SavedSearchInput,
        now_ms: i64,
    ) -> Result<SavedSearch, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO saved_searches (name, query, range, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![input.name, input.query, input.range, now_ms],
        )
        .map_err(|e| name_taken(e, &input.name))?;
        let id = conn.last_insert_rowid();
        get_search(&conn, id)
    }

    /// Every saved search, by name.
    pub fn list_searches(&self) -> Result<Vec<SavedSearch>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT id, name, query, range, created_at FROM saved_searches ORDER BY name, id",
        )?;
        let rows = statement.query_map([], search_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One saved search.
    pub fn get_search(&self, id: i64) -> Result<SavedSearch, StoreError> {
        get_search(&self.conn(), id)
    }

    /// Replaces a saved search's name, query and range. Rules on it pick
    /// up the change; if the query changed they start over (not firing)
    /// from their current watermark.
    pub fn update_search(
        &self,
        id: i64,
        input: &SavedSearchInput,
    ) -> Result<SavedSearch, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let old = get_search(&tx, id)?;
        tx.execute(
            "UPDATE saved_searches SET name = ?2, query = ?3, range = ?4 WHERE id = ?1",
            params![id, input.name, input.query, input.range],
        )
        .map_err(|e| name_taken(e, &input.name))?;
        // Rules re-read their search; if the query changed, what they
        // counted no longer holds and their state starts over.
        let reset = old.query != input.query;
        tx.execute(
            "UPDATE alert_rules SET version = version + 1,
                status = CASE WHEN ?2 THEN 'ok' ELSE status END,
                next_eval_ms = CASE WHEN ?2 THEN 0 ELSE next_eval_ms END
             WHERE search_id = ?1",
            params![id, reset],
        )?;
        let search = get_search(&tx, id)?;
        tx.commit()?;
        Ok(search)
    }

    /// Deletes a saved search that no rule uses.
    pub fn delete_search(&self, id: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let users: Vec<i64> = {
            let mut statement =
                tx.prepare("SELECT id FROM alert_rules WHERE search_id = ?1 ORDER BY id")?;
            let rows = statement.query_map([id], |row| row.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        if !users.is_empty() {
            let list: Vec<String> = users.iter().map(i64::to_string).collect();
            return Err(StoreError::Conflict(format!(
                "saved search {id} is used by alert rule(s) {}; delete them first",
                list.join(", ")
            )));
        }
        if tx.execute("DELETE FROM saved_searches WHERE id = ?1", [id])? == 0 {
            return Err(StoreError::NotFound(format!("saved search {id}")));
        }
        tx.commit()?;
        Ok(())
    }
}

fn name_taken(error: rusqlite::Error, name: &str) -> StoreError {
    match error {
        rusqlite::Error::SqliteFailure(e, _)
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(format!("a saved search named {name:?} already exists"))
        }
        other => StoreError::Sqlite(other),
    }
}

fn search_from_row(row: &Row<'_>) -> rusqlite::Result<SavedSearch> {
    Ok(SavedSearch {
        id: row.get(0)?,
        name: row.get(1)?,
        query: row.get(2)?,
        range: row.get(3)?,
        created_at_ms: row.get(4)?,
    })
}

pub(super) fn get_search(conn: &Connection, id: i64) -> Result<SavedSearch, StoreError> {
    conn.query_row(
        "SELECT id, name, query, range, created_at FROM saved_searches WHERE id = ?1",
        [id],
        search_from_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("saved search {id}")))
}
