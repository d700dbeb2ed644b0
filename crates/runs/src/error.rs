/// Errors of the engine's own operations (not of the steps it runs: those are recorded on the
/// step). `Conflict` and `NotFound` carry text safe to show to people.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The operation does not fit the current state (e.g. retrying a run that did not fail).
    #[error("{0}")]
    Conflict(String),
    /// Bad operator input (e.g. an empty reason).
    #[error("{0}")]
    Invalid(String),
    /// The caller may not do this (the text says why).
    #[error(transparent)]
    Denied(#[from] berth_domain::Denied),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database error")]
    Sqlx(#[from] sqlx::Error),
    #[error("storage error")]
    Db(#[from] berth_db::DbError),
}

impl EngineError {
    /// Unique violations of `runs_one_live_per_environment` become a readable conflict.
    pub(crate) fn from_insert(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            if db.constraint() == Some("runs_one_live_per_environment") {
                return EngineError::Conflict(
                    "this environment already has a provisioning run in progress".into(),
                );
            }
        }
        EngineError::Sqlx(e)
    }
}
