//! DPoP (RFC 9449): a sender-constrained access token carries `cnf.jkt`,
//! the RFC 7638 thumbprint of the client's public key; every request then
//! carries a fresh proof JWT (`typ: dpop+jwt`, the public `jwk` in its
//! header) signed by that key, naming the method (`htm`), URL (`htu`),
//! time (`iat`), a unique id (`jti`) and the token's hash (`ath`). A `jti`
//! is accepted once: replays within the proof lifetime are refused.
//!
//! A proof is accepted from [`MAX_FUTURE_SKEW`] before its `iat` to
//! [`PROOF_LIFETIME`] after it, and its `jti` is remembered for
//! [`REPLAY_WINDOW`] (the whole of that span), so no proof can outlive the
//! memory of its use. A `jti` is at most [`MAX_JTI_LEN`] bytes. The `htu`
//! is compared with the server's configured public URL; with none
//! configured, no proof can be checked and bound tokens are refused.

/// Seconds a proof is accepted after its `iat`.
pub const PROOF_LIFETIME: u64 = 300;
/// Seconds a proof's `iat` may lie in the future (clock skew).
pub const MAX_FUTURE_SKEW: u64 = 5;
/// How long a `jti` is remembered: longer than any proof is accepted.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(PROOF_LIFETIME + MAX_FUTURE_SKEW + 1);
/// Longest accepted `jti`, in bytes.
pub const MAX_JTI_LEN: usize = 128;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::AuthError;

/// When DPoP proofs are needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DpopMode {
    /// Never checked (bound tokens are still refused without a proof).
    Off,
    /// Checked for tokens bound with `cnf.jkt`.
    #[default]
    Optional,
    /// Every JWT must be bound and come with a proof.
    Required,
}

/// Proof ids already seen, kept for the proof lifetime.
pub struct ReplayCache {
    seen: Mutex<HashMap<String, Instant>>,
    window: Duration,
    max: usize,
}

impl ReplayCache {
    /// Remembers ids for `window`, at most `max` of them.
    pub fn new(window: Duration, max: usize) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            window,
            max,
        }
    }

    /// Records `jti`; `false` when it was seen within the window (or the
    /// cache is full of live entries, which fails closed).
    pub fn first_use(&self, jti: &str) -> bool {
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        let now = Instant::now();
        if seen.len() >= self.max {
            seen.retain(|_, t| now.duration_since(*t) < self.window);
            if seen.len() >= self.max {
                return false;
            }
        }
        match seen.get(jti) {
            Some(t) if now.duration_since(*t) < self.window => false,
            _ => {
                seen.insert(jti.to_string(), now);
                true
            }
        }
    }
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: u64,
    #[serde(default)]
    ath: Option<String>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The RFC 7638 thumbprint of a public JWK (EC, RSA or OKP).
pub fn thumbprint(jwk: &Value) -> Result<String, AuthError> {
    let s = |k: &str| {
        jwk.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| AuthError::Dpop(format!("the proof's jwk lacks `{k}`")))
    };
    let canonical = match s("kty")? {
        "EC" => json!({"crv": s("crv")?, "kty": "EC", "x": s("x")?, "y": s("y")?}),
        "RSA" => json!({"e": s("e")?, "kty": "RSA", "n": s("n")?}),
        "OKP" => json!({"crv": s("crv")?, "kty": "OKP", "x": s("x")?}),
        other => return Err(AuthError::Dpop(format!("unsupported key type `{other}`"))),
    };
    // serde_json maps keep keys sorted, which is the canonical order.
    Ok(b64(&Sha256::digest(canonical.to_string().as_bytes())))
}

fn strip_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// Verifies a DPoP proof for a request carrying `access_token`.
pub fn verify_proof(
    proof: &str,
    method: &str,
    url: &str,
    access_token: &str,
    expected_jkt: Option<&str>,
    replay: &ReplayCache,
) -> Result<(), AuthError> {
    if url.is_empty() {
        return Err(AuthError::Dpop(
            "the server has no public URL (`--public-url`), so DPoP proofs cannot be checked"
                .into(),
        ));
    }
    let header = decode_header(proof).map_err(|e| AuthError::Dpop(e.to_string()))?;
    if header.typ.as_deref() != Some("dpop+jwt") {
        return Err(AuthError::Dpop("`typ` must be `dpop+jwt`".into()));
    }
    if matches!(
        header.alg,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    ) {
        return Err(AuthError::Dpop(
            "a proof must use an asymmetric algorithm".into(),
        ));
    }
    let jwk = header
        .jwk
        .as_ref()
        .ok_or_else(|| AuthError::Dpop("the proof has no `jwk`".into()))?;
    let jwk_json = serde_json::to_value(jwk).map_err(|e| AuthError::Dpop(e.to_string()))?;
    if jwk_json.get("d").is_some() {
        return Err(AuthError::Dpop(
            "the proof's `jwk` holds a private key".into(),
        ));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| AuthError::Dpop(e.to_string()))?;
    let mut v = Validation::new(header.alg);
    v.validate_exp = false;
    v.validate_aud = false;
    v.set_required_spec_claims::<&str>(&[]);
    let claims = decode::<ProofClaims>(proof, &key, &v)
        .map_err(|e| AuthError::Dpop(e.to_string()))?
        .claims;
    if !claims.htm.eq_ignore_ascii_case(method) {
        return Err(AuthError::Dpop(format!(
            "`htm` is `{}`, the request is `{method}`",
            claims.htm
        )));
    }
    if !strip_query(&claims.htu).eq_ignore_ascii_case(strip_query(url)) {
        return Err(AuthError::Dpop(format!(
            "`htu` is `{}`, the request is `{url}`",
            claims.htu
        )));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
        return Err(AuthError::Dpop(format!(
            "`jti` must be 1 to {MAX_JTI_LEN} bytes"
        )));
    }
    if claims.iat.saturating_add(PROOF_LIFETIME) < now
        || claims.iat > now.saturating_add(MAX_FUTURE_SKEW)
    {
        return Err(AuthError::Dpop(
            "`iat` is outside the accepted window".into(),
        ));
    }
    let ath = b64(&Sha256::digest(access_token.as_bytes()));
    if claims.ath.as_deref() != Some(ath.as_str()) {
        return Err(AuthError::Dpop(
            "`ath` does not match the access token".into(),
        ));
    }
    if let Some(jkt) = expected_jkt
        && thumbprint(&jwk_json)? != jkt
    {
        return Err(AuthError::Dpop(
            "the proof key is not the key the token is bound to".into(),
        ));
    }
    if !replay.first_use(&claims.jti) {
        return Err(AuthError::Dpop("the proof was already used".into()));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode, jwk::Jwk};

    /// A P-256 test key (generated for these tests only).
    pub(crate) const PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgOJb8gfRmJ/6aaULY
zbnp0Tz7aJEhRS//cb9IEm5R4BuhRANCAASAJ5W20+JNnnyy21YtsuItxQqEYhq9
htwodZy3AIbNTmeV6dZLb5HJ7srcV/HWi0pRF/pCiEAs1PXbQwBP0VS/
-----END PRIVATE KEY-----
";

    pub(crate) fn public_jwk() -> Value {
        json!({"kty": "EC", "crv": "P-256",
               "x": "gCeVttPiTZ58sttWLbLiLcUKhGIavYbcKHWctwCGzU4",
               "y": "Z5Xp1ktvkcnuytxX8daLSlEX-kKIQCzU9dtDAE_RVL8"})
    }

    pub(crate) fn proof(jti: &str, htm: &str, htu: &str, token: &str) -> String {
        proof_at(jti, htm, htu, token, 0)
    }

    /// A proof whose `iat` is `offset` seconds from now.
    pub(crate) fn proof_at(jti: &str, htm: &str, htu: &str, token: &str, offset: i64) -> String {
        let mut h = Header::new(Algorithm::ES256);
        h.typ = Some("dpop+jwt".into());
        h.jwk = Some(serde_json::from_value::<Jwk>(public_jwk()).unwrap());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .saturating_add_signed(offset);
        let claims = json!({"jti": jti, "htm": htm, "htu": htu, "iat": now, "ath": b64(&Sha256::digest(token.as_bytes()))});
        encode(
            &h,
            &claims,
            &EncodingKey::from_ec_pem(PRIVATE_PEM.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn accepts_a_fresh_bound_proof_once() {
        let cache = ReplayCache::new(Duration::from_secs(300), 100);
        let jkt = thumbprint(&public_jwk()).unwrap();
        let p = proof("id-1", "POST", "http://localhost:8080/v1/intents", "tok");
        verify_proof(
            &p,
            "POST",
            "http://localhost:8080/v1/intents?x=1",
            "tok",
            Some(&jkt),
            &cache,
        )
        .unwrap();
        let again = verify_proof(
            &p,
            "POST",
            "http://localhost:8080/v1/intents",
            "tok",
            Some(&jkt),
            &cache,
        );
        assert!(again.unwrap_err().to_string().contains("already used"));
    }

    #[test]
    fn rejects_mismatched_proofs() {
        let cache = ReplayCache::new(Duration::from_secs(300), 100);
        let jkt = thumbprint(&public_jwk()).unwrap();
        let url = "http://localhost/v1/intents";
        let cases = [
            (
                proof("a", "GET", url, "tok"),
                "POST",
                url,
                "tok",
                jkt.as_str(),
            ),
            (
                proof("b", "POST", "http://evil/v1/intents", "tok"),
                "POST",
                url,
                "tok",
                jkt.as_str(),
            ),
            (
                proof("c", "POST", url, "other"),
                "POST",
                url,
                "tok",
                jkt.as_str(),
            ),
            (
                proof("d", "POST", url, "tok"),
                "POST",
                url,
                "tok",
                "wrong-thumbprint",
            ),
        ];
        for (p, m, u, t, k) in cases {
            assert!(verify_proof(&p, m, u, t, Some(k), &cache).is_err());
        }
        assert!(verify_proof("not.a.jwt", "POST", url, "tok", None, &cache).is_err());
    }

    #[test]
    fn future_proofs_long_ids_and_a_missing_public_url_are_refused() {
        let cache = ReplayCache::new(REPLAY_WINDOW, 100);
        let url = "https://pdp.example/v1/intents";
        let check = |p: &str, u: &str| verify_proof(p, "POST", u, "tok", None, &cache);
        // A proof dated 60 s ahead would outlive its `jti` in the cache.
        let err = check(&proof_at("f1", "POST", url, "tok", 60), url).unwrap_err();
        assert!(err.to_string().contains("`iat`"), "{err}");
        check(&proof_at("f2", "POST", url, "tok", 2), url).unwrap();
        check(&proof_at("f3", "POST", url, "tok", -200), url).unwrap();
        assert!(check(&proof_at("f4", "POST", url, "tok", -400), url).is_err());
        let long = "j".repeat(MAX_JTI_LEN + 1);
        let err = check(&proof(&long, "POST", url, "tok"), url).unwrap_err();
        assert!(err.to_string().contains("`jti`"), "{err}");
        check(&proof(&"j".repeat(MAX_JTI_LEN), "POST", url, "tok"), url).unwrap();
        // Without a configured public URL nothing can be compared.
        let err = check(&proof("f5", "POST", url, "tok"), "").unwrap_err();
        assert!(err.to_string().contains("public URL"), "{err}");
        assert!(REPLAY_WINDOW.as_secs() > PROOF_LIFETIME + MAX_FUTURE_SKEW);
    }

    #[test]
    fn the_replay_cache_is_bounded() {
        let cache = ReplayCache::new(Duration::from_secs(300), 2);
        assert!(cache.first_use("a"));
        assert!(cache.first_use("b"));
        assert!(!cache.first_use("c"), "full of live entries: fail closed");
        assert!(!cache.first_use("a"));
    }

    #[test]
    fn thumbprints_follow_rfc_7638() {
        // RFC 7638 section 3.1 example.
        let rsa = json!({"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
        assert_eq!(
            thumbprint(&rsa).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
