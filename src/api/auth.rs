//! Bearer tokens and roles. A token is 32 random bytes in hex behind an `odt_` prefix, shown
//! once when created (`outdial token create --role ROLE`); the store keeps its SHA-256.
//!
//! Roles, most to least powerful: `owner` and `admin` manage everything, `supervisor` reads
//! and controls campaigns and agents, `agent` only sees and sets its own state and
//! dispositions. A missing or unknown token is 401 (with `WWW-Authenticate: Bearer`), a role
//! too weak for the request 403.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::{Deserialize, Serialize};

use super::{ApiState, Problem};

/// What a token may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Its own agent's state and dispositions only.
    Agent,
    /// Reads everything, controls campaigns and agents.
    Supervisor,
    /// Manages everything.
    Admin,
    /// Manages everything (the installation's owner).
    Owner,
}

impl Role {
    /// `agent`, `supervisor`, `admin`, `owner`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// The role named `s`.
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Agent, Role::Supervisor, Role::Admin, Role::Owner]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// A new random token (`odt_` + 64 hex digits).
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("odt_{hex}")
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's role.
    pub role: Role,
    /// The agent an `agent` token acts as.
    pub agent: Option<String>,
}

impl Caller {
    /// True when the caller may act for agent `id` (its own agent, or supervisor and above).
    pub fn may_act_as(&self, id: &str) -> bool {
        self.role >= Role::Supervisor || self.agent.as_deref() == Some(id)
    }

    /// 403 unless [`Caller::may_act_as`].
    pub fn require_agent(&self, id: &str) -> Result<(), Problem> {
        if self.may_act_as(id) {
            Ok(())
        } else {
            Err(Problem::new(
                StatusCode::FORBIDDEN,
                format!(
                    "this token acts for agent {:?} only",
                    self.agent.as_deref().unwrap_or("")
                ),
            ))
        }
    }

    /// 403 unless the caller's role is at least `min`.
    pub fn require(&self, min: Role) -> Result<(), Problem> {
        if self.role >= min {
            Ok(())
        } else {
            Err(Problem::new(
                StatusCode::FORBIDDEN,
                format!("needs the {} role or higher", min.as_str()),
            ))
        }
    }
}

impl FromRequestParts<Arc<ApiState>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = |detail: &str| Problem {
            www_authenticate: true,
            ..Problem::new(StatusCode::UNAUTHORIZED, detail)
        };
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| unauthorized("an Authorization: Bearer token is required"))?;
        let found = state.store.token_role(token).await.map_err(|e| {
            tracing::error!(error = %e, "token lookup failed");
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "token lookup failed")
        })?;
        let (role, agent) = found.ok_or_else(|| unauthorized("unknown or revoked token"))?;
        let role = Role::parse(&role)
            .ok_or_else(|| unauthorized("the token's role is not known to this version"))?;
        Ok(Caller { role, agent })
    }
}
