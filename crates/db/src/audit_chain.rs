//! The tamper-evident history (issue 15): every event is hash-chained per company by a trigger
//! (`migrations/20261204090000_audit_chain.sql`): `hash = sha256(prev_hash || canonical bytes)`,
//! `prev_hash` the previous event's hash (the company's recorded genesis for the first), in
//! `chain_seq` order. [`verify`] walks a company's chain and recomputes every hash in PostgreSQL
//! with the same `events_canonical` function the trigger uses; [`head`] is the value to publish
//! so that it can be kept outside the database, and [`check_published`] compares a kept head
//! with the chain.
//!
//! What verification can tell: an edited row no longer matches its hash (or, when its hash was
//! recomputed too, the next row no longer links to it), a deleted row leaves a gap, a moved row
//! no longer links to its predecessor, rows removed from the end no longer reach the recorded
//! head. Someone who may write every table could rewrite the whole chain consistently: a head
//! published earlier and kept elsewhere is what shows that ([`check_published`]).

use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::DbError;

/// Rows read per query by [`verify`]: each batch is its own short query, so verification holds
/// no transaction open and a large history is read in pieces.
pub const VERIFY_BATCH: i64 = 2_000;

/// A chain position and the hash there (lowercase hex): position 0 is the genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

/// Why the chain does not hold at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakReason {
    /// The row's content does not give its stored hash: the row (or its hash) was changed.
    HashMismatch,
    /// The row does not link to the row before it: rows were moved, or the one before it was
    /// changed and its hash recomputed.
    LinkMismatch,
    /// A position is missing: a row was deleted (or, at the end, the rows up to the recorded
    /// head).
    Gap,
    /// The recorded genesis does not hash to itself, the first row does not link to it, or the
    /// company has events but no recorded genesis.
    GenesisMismatch,
    /// The last row is not the recorded head.
    HeadMismatch,
}

impl BreakReason {
    pub fn describe(self) -> &'static str {
        match self {
            BreakReason::HashMismatch => "the event does not match its hash (it was changed)",
            BreakReason::LinkMismatch => {
                "the event does not link to the one before it (events were moved or replaced)"
            }
            BreakReason::Gap => "an event is missing (deleted)",
            BreakReason::GenesisMismatch => "the chain's recorded start does not hold",
            BreakReason::HeadMismatch => "the last event is not the recorded head",
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ChainReport {
    /// Every event up to the recorded head links and hashes as written.
    Intact {
        /// Events checked (the head's position).
        events: i64,
        /// The head checked (`None`: the company has no chain yet).
        head: Option<ChainHead>,
        last_event_id: Option<i64>,
    },
    /// The first position where the chain does not hold.
    Broken {
        at_seq: i64,
        /// The event found at that position (`None` when it is missing or the break is in the
        /// genesis).
        at_event_id: Option<i64>,
        reason: BreakReason,
        /// Events before the break that hold ("intact up to event N").
        intact_events: i64,
        last_intact_event_id: Option<i64>,
    },
}

impl ChainReport {
    pub fn is_intact(&self) -> bool {
        matches!(self, ChainReport::Intact { .. })
    }
}

/// Whether a head published earlier is still in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PublishedCheck {
    /// The event at that position still has that hash.
    Matches,
    /// It has another hash now: the chain up to there was rewritten.
    Differs { hash: String },
    /// There is no such position (events were removed from the end, or the head is foreign).
    Missing,
}

/// The company's recorded head: the last event's position and hash (`None` before its first
/// event). Published with exports and to the log, so that it can be kept elsewhere.
pub async fn head(pool: &PgPool, company_id: Uuid) -> Result<Option<ChainHead>, DbError> {
    let row = sqlx::query!(
        "SELECT seq, head_hash FROM audit_chain_heads WHERE company_id = $1",
        company_id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| ChainHead {
        seq: r.seq,
        hash: hex::encode(r.head_hash),
    }))
}

/// Walks the company's chain from its genesis to its last event, [`VERIFY_BATCH`] events a
/// query, then compares the end with the recorded head, and reports the first position that does
/// not hold. Events appended while it runs may or may not be included (the report says up to
/// where it checked).
pub async fn verify(pool: &PgPool, company_id: Uuid) -> Result<ChainReport, DbError> {
    verify_batched(pool, company_id, VERIFY_BATCH).await
}

/// [`verify`] with another batch size (tests use small ones to cross batch boundaries).
pub async fn verify_batched(
    pool: &PgPool,
    company_id: Uuid,
    batch: i64,
) -> Result<ChainReport, DbError> {
    let batch = batch.max(1);
    let genesis = sqlx::query!(
        r#"SELECT genesis_hash,
                  genesis_hash = audit_genesis_hash(company_id, genesis_at) AS "holds!"
           FROM audit_chain_heads WHERE company_id = $1"#,
        company_id
    )
    .fetch_optional(pool)
    .await?;
    let Some(genesis) = genesis else {
        return Ok(match event_at(pool, company_id, None).await? {
            None => ChainReport::Intact {
                events: 0,
                head: None,
                last_event_id: None,
            },
            Some(id) => broken(1, Some(id), BreakReason::GenesisMismatch, 0, None),
        });
    };
    if !genesis.holds {
        return Ok(broken(0, None, BreakReason::GenesisMismatch, 0, None));
    }

    let mut expected_prev = genesis.genesis_hash;
    let mut checked: i64 = 0;
    let mut last_id: Option<i64> = None;
    loop {
        let rows = sqlx::query!(
            r#"SELECT e.id, e.chain_seq, e.prev_hash, e.hash,
                      sha256(e.prev_hash || events_canonical(e)) AS "recomputed!"
               FROM events e
               WHERE e.company_id = $1 AND e.chain_seq > $2
               ORDER BY e.chain_seq
               LIMIT $3"#,
            company_id,
            checked,
            batch
        )
        .fetch_all(pool)
        .await?;
        let full = rows.len() as i64 == batch;
        for row in rows {
            let seq = checked + 1;
            let reason = if row.chain_seq != seq {
                Some(BreakReason::Gap)
            } else if row.prev_hash != expected_prev {
                Some(if seq == 1 {
                    BreakReason::GenesisMismatch
                } else {
                    BreakReason::LinkMismatch
                })
            } else if row.hash != row.recomputed {
                Some(BreakReason::HashMismatch)
            } else {
                None
            };
            if let Some(reason) = reason {
                return Ok(broken(seq, Some(row.id), reason, checked, last_id));
            }
            expected_prev = row.hash;
            checked = seq;
            last_id = Some(row.id);
        }
        if !full {
            break;
        }
    }

    // The head is read after the walk: every event the walk saw was committed with a head at
    // least as far on, so a head behind the walk was moved back, and a head ahead of it is
    // either events appended since (they are there) or events removed from the end.
    let Some(recorded) = sqlx::query!(
        "SELECT seq, head_hash FROM audit_chain_heads WHERE company_id = $1",
        company_id
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(broken(
            0,
            None,
            BreakReason::GenesisMismatch,
            checked,
            last_id,
        ));
    };
    if recorded.seq < checked || (recorded.seq == checked && recorded.head_hash != expected_prev) {
        let at_event_id = last_id.filter(|_| recorded.seq == checked);
        return Ok(broken(
            recorded.seq,
            at_event_id,
            BreakReason::HeadMismatch,
            checked,
            last_id,
        ));
    }
    if recorded.seq > checked
        && event_at(pool, company_id, Some(checked + 1))
            .await?
            .is_none()
    {
        return Ok(broken(
            checked + 1,
            None,
            BreakReason::Gap,
            checked,
            last_id,
        ));
    }
    Ok(ChainReport::Intact {
        events: checked,
        head: Some(ChainHead {
            seq: checked,
            hash: hex::encode(expected_prev),
        }),
        last_event_id: last_id,
    })
}

/// The id of the company's event at a position (`None`: its first event).
async fn event_at(
    pool: &PgPool,
    company_id: Uuid,
    seq: Option<i64>,
) -> Result<Option<i64>, DbError> {
    Ok(sqlx::query_scalar!(
        "SELECT id FROM events
         WHERE company_id = $1 AND ($2::bigint IS NULL OR chain_seq = $2)
         ORDER BY chain_seq LIMIT 1",
        company_id,
        seq
    )
    .fetch_optional(pool)
    .await?)
}

/// Whether a head published earlier (kept outside the database) is still in the company's
/// chain: the event at its position must still carry its hash.
pub async fn check_published(
    pool: &PgPool,
    company_id: Uuid,
    published: &ChainHead,
) -> Result<PublishedCheck, DbError> {
    let stored = if published.seq == 0 {
        sqlx::query_scalar!(
            "SELECT genesis_hash FROM audit_chain_heads WHERE company_id = $1",
            company_id
        )
        .fetch_optional(pool)
        .await?
    } else {
        sqlx::query_scalar!(
            "SELECT hash FROM events WHERE company_id = $1 AND chain_seq = $2",
            company_id,
            published.seq
        )
        .fetch_optional(pool)
        .await?
    };
    Ok(match stored {
        None => PublishedCheck::Missing,
        Some(hash) if hex::encode(&hash).eq_ignore_ascii_case(&published.hash) => {
            PublishedCheck::Matches
        }
        Some(hash) => PublishedCheck::Differs {
            hash: hex::encode(hash),
        },
    })
}

fn broken(
    at_seq: i64,
    at_event_id: Option<i64>,
    reason: BreakReason,
    intact_events: i64,
    last_intact_event_id: Option<i64>,
) -> ChainReport {
    ChainReport::Broken {
        at_seq,
        at_event_id,
        reason,
        intact_events,
        last_intact_event_id,
    }
}
