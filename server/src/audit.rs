//! The tamper-evident history as seen from outside the database (the chain itself is
//! `berth_db::audit_chain`): verification for auditors and admins (`GET /api/v1/audit/verify`
//! and `server verify-audit`), and the chain head published where it can be kept elsewhere — a
//! header on every export and a line in the log each day.

use axum::http::HeaderValue;
use berth_db::{
    audit_chain::{self, ChainHead, ChainReport},
    PgPool,
};
use uuid::Uuid;

/// The response header exports carry: the company's chain head when the export started.
pub const HEAD_HEADER: &str = "berth-audit-head";

/// How often the head goes to the log.
const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// `seq=N; sha256=HEX`, as exports and the log write a head.
pub fn head_text(head: &ChainHead) -> String {
    format!("seq={}; sha256={}", head.seq, head.hash)
}

/// Reads a head written by [`head_text`] (what an auditor kept), for `server verify-audit`.
pub fn parse_head(text: &str) -> Option<ChainHead> {
    let mut seq = None;
    let mut hash = None;
    for part in text.split(';').map(str::trim) {
        if let Some(v) = part.strip_prefix("seq=") {
            seq = v.parse::<i64>().ok().filter(|s| *s >= 0);
        } else if let Some(v) = part.strip_prefix("sha256=") {
            hash = (v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| v.to_ascii_lowercase());
        }
    }
    Some(ChainHead {
        seq: seq?,
        hash: hash?,
    })
}

/// The company's head as a header value; `None` before its first event. A failure to read it
/// is logged and the export goes on without it (the export itself is recorded either way).
pub async fn head_header(pool: &PgPool, company_id: Uuid) -> Option<HeaderValue> {
    match audit_chain::head(pool, company_id).await {
        Ok(head) => head.and_then(|h| HeaderValue::from_str(&head_text(&h)).ok()),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the audit chain head");
            None
        }
    }
}

/// A report in words: "intact up to event N" or where and why it breaks.
pub fn describe(report: &ChainReport) -> String {
    match report {
        ChainReport::Intact {
            events,
            head: Some(head),
            last_event_id,
        } => format!(
            "intact up to event {} ({events} events; head {})",
            last_event_id.map_or_else(|| "-".into(), |id| id.to_string()),
            head_text(head)
        ),
        ChainReport::Intact { head: None, .. } => "intact (no events yet)".into(),
        ChainReport::Broken {
            at_seq,
            at_event_id,
            reason,
            intact_events,
            last_intact_event_id,
        } => {
            let at = match at_event_id {
                Some(id) => format!("event {id} (position {at_seq})"),
                None => format!("position {at_seq}"),
            };
            let before = match last_intact_event_id {
                Some(id) => format!("intact up to event {id} ({intact_events} events)"),
                None => "nothing before it holds".into(),
            };
            format!("BROKEN at {at}: {}; {before}", reason.describe())
        }
    }
}

/// Writes the head to the log once a day (and at start), so that log storage kept apart from
/// the database holds a trail of heads to check the chain against.
pub fn spawn_daily_head_log(pool: PgPool, company_id: Uuid) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(LOG_EVERY);
        loop {
            every.tick().await;
            match audit_chain::head(&pool, company_id).await {
                Ok(Some(head)) => {
                    tracing::info!(head = %head_text(&head), %company_id, "audit chain head")
                }
                Ok(None) => tracing::info!(%company_id, "audit chain head: no events yet"),
                Err(e) => tracing::warn!(error = %e, "cannot read the audit chain head"),
            }
        }
    });
}

/// `server verify-audit [HEAD]`: verifies the company's chain and, given a head kept earlier
/// (`seq=N; sha256=HEX`), checks that it is still in the chain. Prints the findings; returns
/// whether everything holds.
pub async fn verify_command(
    pool: &PgPool,
    company_id: Uuid,
    kept: Option<&str>,
) -> anyhow::Result<bool> {
    let kept = match kept {
        Some(text) => Some(parse_head(text).ok_or_else(|| {
            anyhow::anyhow!("a kept head looks like 'seq=42; sha256=<64 hex digits>'")
        })?),
        None => None,
    };
    let report = audit_chain::verify(pool, company_id).await?;
    println!("{}", describe(&report));
    let mut holds = report.is_intact();
    if let Some(kept) = kept {
        let check = audit_chain::check_published(pool, company_id, &kept).await?;
        let found = match &check {
            audit_chain::PublishedCheck::Matches => "still in the chain".to_owned(),
            audit_chain::PublishedCheck::Differs { hash } => {
                format!("REWRITTEN: that position now has sha256={hash}")
            }
            audit_chain::PublishedCheck::Missing => {
                "MISSING: the chain no longer reaches that position".to_owned()
            }
        };
        println!("kept head {}: {found}", head_text(&kept));
        holds &= matches!(check, audit_chain::PublishedCheck::Matches);
    }
    Ok(holds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_head_reads_back() {
        let head = ChainHead {
            seq: 42,
            hash: "ab".repeat(32),
        };
        assert_eq!(parse_head(&head_text(&head)), Some(head));
        for bad in [
            "",
            "seq=42",
            "seq=-1; sha256=".to_owned().as_str(),
            "seq=x; sha256=abab",
            "sha256=zz",
        ] {
            assert_eq!(parse_head(bad), None, "{bad}");
        }
    }
}
