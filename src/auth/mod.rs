//! Who may talk to telos. Every `/v1` and `/access` request is
//! authenticated as a [`Caller`] — a client, its tenant and its roles —
//! from `Authorization: Bearer <credential>`:
//!
//! - an **API key** listed in `--auth-keys FILE` (only its sha256 is stored;
//!   keys are compared in constant time), or
//! - an **OAuth2 bearer JWT** (an RFC 7523 client assertion or an access
//!   token) verified against `--auth-jwks FILE` or `--auth-jwks-url URL`
//!   (cached, refreshed on an unknown `kid`), with `iss`, `aud`, `exp` and
//!   `nbf` checked and tenant and roles read from configured claims;
//!   optionally sender-constrained with DPoP (RFC 9449, [`dpop`]).
//!
//! Roles give least privilege: `frontend` opens intents and workflows,
//! `pep` reports steps and asks for decisions, `analyst` reads workflows,
//! reports and drift, `admin` manages catalogs. A caller sees only its
//! tenant's data. With no authentication configured (loopback only) every
//! caller is the `default` tenant with every role.

pub mod dpop;
mod jwks;
mod keys;

use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub use dpop::{DpopMode, ReplayCache};
pub use jwks::{JwksPolicy, JwksSource, JwtAuth, JwtAuthConfig};
pub use keys::{ApiKey, ApiKeys};

/// Errors of authentication and authorization.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum AuthError {
    /// No credential was sent.
    #[error("authentication required: send `Authorization: Bearer <key or token>`")]
    Missing,
    /// The credential is not valid.
    #[error("invalid credential: {0}")]
    Invalid(String),
    /// The caller lacks the role the route needs.
    #[error("the `{0}` role is required")]
    Forbidden(&'static str),
    /// The DPoP proof is missing or invalid.
    #[error("invalid DPoP proof: {0}")]
    Dpop(String),
    /// The auth configuration cannot be used.
    #[error("authentication configuration: {0}")]
    Config(String),
}

/// A role of a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Creates intents and workflows.
    Frontend,
    /// Reports steps and asks for evaluations.
    Pep,
    /// Reads workflows, reports and drift.
    Analyst,
    /// Manages catalogs and policies.
    Admin,
}

impl Role {
    /// All roles.
    pub const ALL: [Role; 4] = [Self::Frontend, Self::Pep, Self::Analyst, Self::Admin];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Frontend => "frontend",
            Self::Pep => "pep",
            Self::Analyst => "analyst",
            Self::Admin => "admin",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Client id (API key `client`, or the JWT's `client_id`/`azp`/`sub`).
    pub client: String,
    /// The tenant whose data it may see.
    pub tenant: String,
    /// What it may do.
    pub roles: Vec<Role>,
}

impl Caller {
    /// The caller of an unauthenticated (loopback, development) server.
    pub fn anonymous() -> Self {
        Self {
            client: "anonymous".into(),
            tenant: "default".into(),
            roles: Role::ALL.to_vec(),
        }
    }

    /// Fails unless the caller has `role`.
    pub fn require(&self, role: Role) -> Result<(), AuthError> {
        if self.roles.contains(&role) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(role.as_str()))
        }
    }
}

/// What a request presents.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// The bearer credential.
    pub bearer: Option<&'a str>,
    /// The `DPoP` header.
    pub dpop: Option<&'a str>,
    /// HTTP method.
    pub method: &'a str,
    /// The request URL: the configured public URL and the path (empty when
    /// no public URL is configured; DPoP proofs are then refused).
    pub url: &'a str,
}

/// Authenticates requests.
#[derive(Clone, Default)]
pub struct Authenticator {
    keys: Option<Arc<ApiKeys>>,
    jwt: Option<Arc<JwtAuth>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("api_keys", &self.keys.as_ref().map_or(0, |k| k.len()))
            .field("jwt", &self.jwt.is_some())
            .finish()
    }
}

impl Authenticator {
    /// No authentication: every caller is [`Caller::anonymous`].
    pub fn open() -> Self {
        Self::default()
    }

    /// Authentication by API keys and/or JWTs.
    pub fn new(keys: Option<ApiKeys>, jwt: Option<JwtAuth>) -> Self {
        Self {
            keys: keys.map(Arc::new),
            jwt: jwt.map(Arc::new),
        }
    }

    /// Whether any authentication is configured.
    pub fn enabled(&self) -> bool {
        self.keys.is_some() || self.jwt.is_some()
    }

    /// Authenticates a request.
    pub async fn authenticate(&self, p: Presented<'_>) -> Result<Caller, AuthError> {
        if !self.enabled() {
            return Ok(Caller::anonymous());
        }
        let bearer = p.bearer.ok_or(AuthError::Missing)?;
        let looks_like_jwt = bearer.split('.').count() == 3;
        if let (Some(jwt), true) = (&self.jwt, looks_like_jwt) {
            return jwt.authenticate(bearer, p).await;
        }
        if let Some(keys) = &self.keys
            && let Some(caller) = keys.find(bearer)
        {
            return Ok(caller);
        }
        Err(AuthError::Invalid("unknown key or token".into()))
    }
}

/// Reads `Authorization: Bearer <x>` (also `DPoP <x>` for DPoP-bound tokens).
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, rest) = h.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop"))
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_headers() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("DPoP t.o.k")), Some("t.o.k"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn roles_are_checked() {
        let c = Caller {
            client: "c".into(),
            tenant: "t".into(),
            roles: vec![Role::Pep],
        };
        assert!(c.require(Role::Pep).is_ok());
        assert_eq!(c.require(Role::Admin), Err(AuthError::Forbidden("admin")));
        assert!(Caller::anonymous().require(Role::Admin).is_ok());
    }

    #[tokio::test]
    async fn open_servers_are_anonymous_and_closed_ones_need_credentials() {
        let p = Presented {
            bearer: None,
            dpop: None,
            method: "GET",
            url: "http://x/v1",
        };
        assert_eq!(
            Authenticator::open().authenticate(p).await.unwrap(),
            Caller::anonymous()
        );
        let keys = ApiKeys::from_json(&keys::tests::sample_file()).unwrap();
        let auth = Authenticator::new(Some(keys), None);
        assert_eq!(auth.authenticate(p).await, Err(AuthError::Missing));
        let with = Presented {
            bearer: Some("fe-secret"),
            ..p
        };
        assert_eq!(auth.authenticate(with).await.unwrap().client, "fe-1");
        let wrong = Presented {
            bearer: Some("nope"),
            ..p
        };
        assert!(matches!(
            auth.authenticate(wrong).await,
            Err(AuthError::Invalid(_))
        ));
    }
}
