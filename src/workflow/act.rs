//! RFC 8693 `act` claims and delegated JWTs. An `act` claim nests the
//! delegation chain: the outermost `act` names the current actor, the most
//! deeply nested the oldest. A delegated token carries `sub` (the person)
//! and `act`. Tokens are read with `jsonwebtoken`; with a JWKS configured,
//! signature, `exp`, `nbf` and `iss` are verified, else the claims are read
//! unverified and the step is marked so.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::WorkflowError;

/// One actor of a delegation chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainActor {
    /// The actor's `sub`.
    pub sub: String,
    /// The actor's issuer, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

/// Parses an `act` claim into actors, oldest first (the current actor
/// last). Fails on a non-object, a missing or non-string `sub`, or nesting
/// deeper than `max_depth`.
pub fn parse_act(act: &Value, max_depth: usize) -> Result<Vec<ChainActor>, WorkflowError> {
    let mut chain = Vec::new();
    let mut cur = act;
    loop {
        let obj = cur
            .as_object()
            .ok_or_else(|| WorkflowError::InvalidAct("`act` must be an object".into()))?;
        if chain.len() >= max_depth {
            return Err(WorkflowError::InvalidAct(format!(
                "`act` is nested deeper than {max_depth} levels"
            )));
        }
        let sub = obj
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                WorkflowError::InvalidAct("every `act` level needs a string `sub`".into())
            })?;
        let iss = match obj.get("iss") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(WorkflowError::InvalidAct(
                    "`act.iss` must be a string".into(),
                ));
            }
        };
        chain.push(ChainActor {
            sub: sub.to_string(),
            iss,
        });
        match obj.get("act") {
            None | Some(Value::Null) => break,
            Some(next) => cur = next,
        }
    }
    chain.reverse();
    Ok(chain)
}

/// Claims telos reads from a delegated token.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TokenClaims {
    /// The person the token is for.
    pub sub: String,
    /// The delegation chain.
    #[serde(default)]
    pub act: Option<Value>,
    /// Issuer.
    #[serde(default)]
    pub iss: Option<String>,
}

/// A token with whether its signature and validity were checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadToken {
    /// Its claims.
    pub claims: TokenClaims,
    /// `true` when verified against the configured JWKS.
    pub verified: bool,
}

/// How tokens are verified.
#[derive(Clone, Default)]
pub struct TokenVerifier {
    jwks: Option<JwkSet>,
    issuers: Vec<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("keys", &self.jwks.as_ref().map_or(0, |k| k.keys.len()))
            .field("issuers", &self.issuers)
            .finish()
    }
}

impl TokenVerifier {
    /// Reads tokens without verifying them.
    pub fn unverified() -> Self {
        Self::default()
    }

    /// Verifies tokens against a JWKS document; `issuers` (if not empty)
    /// are the accepted `iss` values, `audience` the required `aud`.
    pub fn from_jwks(
        jwks: &str,
        issuers: Vec<String>,
        audience: Option<String>,
    ) -> Result<Self, WorkflowError> {
        let jwks: JwkSet =
            serde_json::from_str(jwks).map_err(|e| WorkflowError::Jwks(e.to_string()))?;
        if jwks.keys.is_empty() {
            return Err(WorkflowError::Jwks("the key set is empty".into()));
        }
        Ok(Self {
            jwks: Some(jwks),
            issuers,
            audience,
        })
    }

    /// Whether a JWKS is configured.
    pub fn verifies(&self) -> bool {
        self.jwks.is_some()
    }

    /// Reads (and, with a JWKS, verifies) a compact JWT.
    pub fn read(&self, token: &str) -> Result<ReadToken, WorkflowError> {
        let header =
            decode_header(token).map_err(|e| WorkflowError::MalformedToken(e.to_string()))?;
        let Some(jwks) = &self.jwks else {
            let claims = unverified_claims(token)?;
            return Ok(ReadToken {
                claims,
                verified: false,
            });
        };
        let jwk = match &header.kid {
            Some(kid) => jwks.find(kid),
            None if jwks.keys.len() == 1 => jwks.keys.first(),
            None => None,
        }
        .ok_or_else(|| {
            WorkflowError::InvalidToken("no key in the JWKS matches the token's `kid`".into())
        })?;
        let key =
            DecodingKey::from_jwk(jwk).map_err(|e| WorkflowError::InvalidToken(e.to_string()))?;
        let mut validation = Validation::new(header.alg);
        validation.validate_nbf = true;
        // `iss` and `aud` must be present (and match when configured;
        // `serve` refuses `--jwks` without both configured).
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        if !self.issuers.is_empty() {
            validation.set_issuer(&self.issuers);
        }
        match &self.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let data = decode::<TokenClaims>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            let malformed = matches!(
                e.kind(),
                ErrorKind::InvalidToken
                    | ErrorKind::Base64(_)
                    | ErrorKind::Json(_)
                    | ErrorKind::Utf8(_)
            );
            if malformed {
                WorkflowError::MalformedToken(e.to_string())
            } else {
                WorkflowError::InvalidToken(e.to_string())
            }
        })?;
        Ok(ReadToken {
            claims: data.claims,
            verified: true,
        })
    }
}

fn unverified_claims(token: &str) -> Result<TokenClaims, WorkflowError> {
    use base64::Engine;
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| WorkflowError::MalformedToken("a JWT has three parts".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|e| WorkflowError::MalformedToken(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| WorkflowError::MalformedToken(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    #[test]
    fn chains_read_oldest_first() {
        let act = json!({"sub": "agent:tool-runner", "act": {"sub": "agent:planner", "iss": "https://idp"}});
        let chain = parse_act(&act, 8).unwrap();
        assert_eq!(
            chain.iter().map(|a| a.sub.as_str()).collect::<Vec<_>>(),
            vec!["agent:planner", "agent:tool-runner"]
        );
        assert_eq!(chain[0].iss.as_deref(), Some("https://idp"));
    }

    #[test]
    fn bad_act_claims_are_rejected() {
        assert!(parse_act(&json!("agent"), 8).is_err());
        assert!(parse_act(&json!({"act": {"sub": "a"}}), 8).is_err());
        assert!(parse_act(&json!({"sub": 3}), 8).is_err());
        let mut deep = json!({"sub": "a0"});
        for i in 1..10 {
            deep = json!({"sub": format!("a{i}"), "act": deep});
        }
        assert!(parse_act(&deep, 8).is_err());
        assert_eq!(parse_act(&deep, 10).unwrap().len(), 10);
    }

    fn hs_jwks(secret: &[u8]) -> String {
        use base64::Engine;
        let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        json!({"keys": [{"kty": "oct", "kid": "k1", "alg": "HS256", "k": k}]}).to_string()
    }

    fn token(secret: &[u8], claims: Value) -> String {
        let mut h = Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some("k1".into());
        encode(&h, &claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    #[test]
    fn unverified_tokens_are_read_and_marked() {
        let t = token(
            b"s",
            json!({"sub": "alice", "act": {"sub": "agent"}, "exp": 1}),
        );
        let read = TokenVerifier::unverified().read(&t).unwrap();
        assert!(!read.verified);
        assert_eq!(read.claims.sub, "alice");
        assert!(matches!(
            TokenVerifier::unverified().read("x.y"),
            Err(WorkflowError::MalformedToken(_))
        ));
    }

    #[test]
    fn verified_tokens_check_signature_expiry_and_issuer() {
        let v = TokenVerifier::from_jwks(
            &hs_jwks(b"secret-1"),
            vec!["https://idp".into()],
            Some("telos".into()),
        )
        .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let good = token(
            b"secret-1",
            json!({"sub": "alice", "aud": "telos", "iss": "https://idp", "exp": now + 60}),
        );
        assert!(v.read(&good).unwrap().verified);
        let forged = token(
            b"other",
            json!({"sub": "alice", "aud": "telos", "iss": "https://idp", "exp": now + 60}),
        );
        assert!(matches!(
            v.read(&forged),
            Err(WorkflowError::InvalidToken(_))
        ));
        let expired = token(
            b"secret-1",
            json!({"sub": "alice", "aud": "telos", "iss": "https://idp", "exp": now - 3600}),
        );
        assert!(matches!(
            v.read(&expired),
            Err(WorkflowError::InvalidToken(_))
        ));
        let wrong_iss = token(
            b"secret-1",
            json!({"sub": "alice", "aud": "telos", "iss": "https://evil", "exp": now + 60}),
        );
        assert!(matches!(
            v.read(&wrong_iss),
            Err(WorkflowError::InvalidToken(_))
        ));
        let early = token(
            b"secret-1",
            json!({"sub": "alice", "aud": "telos", "iss": "https://idp", "exp": now + 600, "nbf": now + 300}),
        );
        assert!(matches!(
            v.read(&early),
            Err(WorkflowError::InvalidToken(_))
        ));
        // `iss` and `aud` are required claims; the error names the missing one.
        for (claim, claims) in [
            (
                "iss",
                json!({"sub": "alice", "aud": "telos", "exp": now + 60}),
            ),
            (
                "aud",
                json!({"sub": "alice", "iss": "https://idp", "exp": now + 60}),
            ),
        ] {
            match v.read(&token(b"secret-1", claims)) {
                Err(WorkflowError::InvalidToken(m)) => assert!(m.contains(claim), "{m}"),
                other => panic!("{claim}: {other:?}"),
            }
        }
        let wrong_aud = token(
            b"secret-1",
            json!({"sub": "alice", "iss": "https://idp", "aud": "other", "exp": now + 60}),
        );
        assert!(matches!(
            v.read(&wrong_aud),
            Err(WorkflowError::InvalidToken(_))
        ));
        assert!(matches!(
            v.read("not-a-jwt"),
            Err(WorkflowError::MalformedToken(_))
        ));
    }
}
