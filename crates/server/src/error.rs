//! Errors as the API returns them: JSON with a code, under the HTTP status that goes with it.
//!
//! The codes are the API's words for the CLI's exit codes (`docs/api.md`, Errors): the CLI in
//! server mode maps each back to its exit code in `crates/cli/src/exit.rs`, so a command exits
//! the same against a server as on a local store. Messages are the engine's and the store's
//! own; a secret never reaches them (stored values are redacted before they are stored).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use waygate_core::store::StoreError;
use waygate_executor::EngineError;

/// What kind of failure, one per CLI outcome it maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// Bad input or a refused action (exit 1): an ended run, an unknown guard, a refused
    /// approval, a missing variable, a workflow the server has not loaded.
    Error,
    /// No such run (exit 1).
    NotFound,
    /// A request the command line would refuse as usage (exit 2): a blank reason, an
    /// unknown `--status`.
    Usage,
    /// The run moved, the environment is busy, a rollback is under way (exit 5).
    Conflict,
    /// The server is stopping: the action was interrupted and the run can be resumed (exit 4).
    Interrupted,
    /// No token, or an unknown or revoked one (HTTP 401; exit 7).
    NotAuthenticated,
    /// The token's roles do not allow the action (HTTP 403; exit 7).
    NotAllowed,
    /// The request body is larger than the server takes (exit 1).
    TooLarge,
    /// The store failed (exit 1).
    Store,
    /// The server has as many event streams open as it allows (HTTP 503; exit 5): try again
    /// later or follow the run with `status`.
    Busy,
    /// The request used a method its route does not take (HTTP 405; exit 1).
    WrongMethod,
    /// The request took longer than the server allows (HTTP 408; exit 1).
    Timeout,
}

impl Code {
    /// The HTTP status that carries this code.
    pub fn status(self) -> StatusCode {
        match self {
            Code::Error => StatusCode::UNPROCESSABLE_ENTITY,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::Usage => StatusCode::BAD_REQUEST,
            Code::Conflict => StatusCode::CONFLICT,
            Code::Interrupted => StatusCode::SERVICE_UNAVAILABLE,
            Code::NotAuthenticated => StatusCode::UNAUTHORIZED,
            Code::NotAllowed => StatusCode::FORBIDDEN,
            Code::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::Store => StatusCode::INTERNAL_SERVER_ERROR,
            Code::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Code::WrongMethod => StatusCode::METHOD_NOT_ALLOWED,
            Code::Timeout => StatusCode::REQUEST_TIMEOUT,
        }
    }
}

/// An API error: `{"error": {"code": "conflict", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// What kind.
    pub code: Code,
    /// What happened, for people.
    pub message: String,
}

/// The JSON body of an error response.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ApiError,
}

impl ApiError {
    /// An error of `code` saying `message`.
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.code.status(), Json(ErrorBody { error: self })).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::new(store_code(&e), e.to_string())
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let code = match &e {
            EngineError::Store(s) => store_code(s),
            e if e.is_conflict() => Code::Conflict,
            e if e.is_interrupted() => Code::Interrupted,
            EngineError::BlankReason(_) => Code::Usage,
            EngineError::Join(_) | EngineError::Lock(_) => Code::Store,
            _ => Code::Error,
        };
        ApiError::new(code, e.to_string())
    }
}

fn store_code(e: &StoreError) -> Code {
    match e {
        StoreError::NotFound(_) => Code::NotFound,
        e if e.is_conflict() => Code::Conflict,
        StoreError::RunEnded { .. } | StoreError::Invalid(_) => Code::Error,
        _ => Code::Store,
    }
}
