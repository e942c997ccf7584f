//! OAuth2 bearer JWTs (RFC 7523 client assertions or access tokens)
//! verified against a JWKS from a file or a URL. A URL's key set is cached
//! and fetched again when a token names an unknown `kid` (at most once per
//! `refresh_every`), so rotated keys are picked up without a restart.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::Value;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use super::dpop::{DpopMode, ReplayCache, verify_proof};
use super::{AuthError, Caller, Presented, Role};

/// Where the keys come from.
pub enum JwksSource {
    /// A fixed key set (from a file).
    Static(JwkSet),
    /// A URL, fetched on start and refreshed on an unknown `kid`.
    Url {
        /// The JWKS URL.
        url: String,
        /// HTTP client.
        client: reqwest::Client,
        /// The cached key set and when it was fetched.
        cache: RwLock<(JwkSet, Option<Instant>)>,
        /// Minimum time between two fetches.
        refresh_every: Duration,
    },
}

impl JwksSource {
    /// Parses a JWKS document.
    pub fn from_json(text: &str) -> Result<Self, AuthError> {
        let set: JwkSet =
            serde_json::from_str(text).map_err(|e| AuthError::Config(format!("JWKS: {e}")))?;
        if set.keys.is_empty() {
            return Err(AuthError::Config("the JWKS has no key".into()));
        }
        Ok(Self::Static(set))
    }

    /// A JWKS URL (fetched lazily, then cached).
    pub fn url(url: String, refresh_every: Duration) -> Result<Self, AuthError> {
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| AuthError::Config(format!("JWKS URL `{url}`: {e}")))?;
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(5));
        // A key set on this machine is never fetched through a proxy.
        let loopback = parsed.host_str().is_some_and(|h| {
            h == "localhost"
                || h.trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        if loopback {
            builder = builder.no_proxy();
        }
        let client = builder
            .build()
            .map_err(|e| AuthError::Config(e.to_string()))?;
        Ok(Self::Url {
            url,
            client,
            cache: RwLock::new((JwkSet { keys: vec![] }, None)),
            refresh_every,
        })
    }

    async fn key(&self, kid: Option<&str>) -> Result<DecodingKey, AuthError> {
        let pick = |set: &JwkSet| -> Option<Result<DecodingKey, AuthError>> {
            let jwk = match kid {
                Some(k) => set.find(k),
                None if set.keys.len() == 1 => set.keys.first(),
                None => None,
            }?;
            Some(DecodingKey::from_jwk(jwk).map_err(|e| AuthError::Invalid(e.to_string())))
        };
        match self {
            Self::Static(set) => pick(set).unwrap_or_else(|| {
                Err(AuthError::Invalid(
                    "no key matches the token's `kid`".into(),
                ))
            }),
            Self::Url {
                url,
                client,
                cache,
                refresh_every,
            } => {
                let stale = {
                    let guard = cache
                        .read()
                        .map_err(|_| AuthError::Config("JWKS cache poisoned".into()))?;
                    if let Some(k) = pick(&guard.0) {
                        return k;
                    }
                    guard.1.is_none_or(|t| t.elapsed() >= *refresh_every)
                };
                if !stale {
                    return Err(AuthError::Invalid(
                        "no key matches the token's `kid`".into(),
                    ));
                }
                let set: JwkSet = client
                    .get(url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| AuthError::Invalid(format!("fetching the JWKS: {e}")))?
                    .json()
                    .await
                    .map_err(|e| AuthError::Invalid(format!("reading the JWKS: {e}")))?;
                let found = pick(&set);
                if let Ok(mut guard) = cache.write() {
                    *guard = (set, Some(Instant::now()));
                }
                found.unwrap_or_else(|| {
                    Err(AuthError::Invalid(
                        "no key matches the token's `kid`".into(),
                    ))
                })
            }
        }
    }
}

/// Settings of JWT authentication.
#[derive(Debug, Clone)]
pub struct JwtAuthConfig {
    /// Accepted issuers (empty: any).
    pub issuers: Vec<String>,
    /// Required audience.
    pub audience: Option<String>,
    /// Claim holding the tenant.
    pub tenant_claim: String,
    /// Claim holding the roles (an array, or a space-separated string).
    pub roles_claim: String,
    /// Whether DPoP proofs are needed.
    pub dpop: DpopMode,
    /// Clock leeway, seconds.
    pub leeway: u64,
}

impl Default for JwtAuthConfig {
    fn default() -> Self {
        Self {
            issuers: vec![],
            audience: None,
            tenant_claim: "tenant".into(),
            roles_claim: "roles".into(),
            dpop: DpopMode::Optional,
            leeway: 30,
        }
    }
}

/// JWT authentication.
pub struct JwtAuth {
    source: JwksSource,
    config: JwtAuthConfig,
    replay: ReplayCache,
}

impl JwtAuth {
    /// JWT authentication over `source`.
    pub fn new(source: JwksSource, config: JwtAuthConfig) -> Self {
        Self {
            source,
            config,
            replay: ReplayCache::new(Duration::from_secs(300), 100_000),
        }
    }

    /// Verifies a bearer JWT (and its DPoP proof) and reads the caller.
    pub async fn authenticate(&self, token: &str, p: Presented<'_>) -> Result<Caller, AuthError> {
        let header = decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let key = self.source.key(header.kid.as_deref()).await?;
        let mut v = Validation::new(header.alg);
        v.leeway = self.config.leeway;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp"]);
        if !self.config.issuers.is_empty() {
            v.set_issuer(&self.config.issuers);
        }
        match &self.config.audience {
            Some(a) => v.set_audience(&[a]),
            None => v.validate_aud = false,
        }
        let claims: Value = decode::<Value>(token, &key, &v)
            .map_err(|e| AuthError::Invalid(e.to_string()))?
            .claims;
        let jkt = claims
            .get("cnf")
            .and_then(|c| c.get("jkt"))
            .and_then(Value::as_str);
        match (jkt, self.config.dpop) {
            (Some(jkt), _) => {
                let proof = p
                    .dpop
                    .ok_or_else(|| AuthError::Dpop("a DPoP proof is required".into()))?;
                verify_proof(proof, p.method, p.url, token, Some(jkt), &self.replay)?;
            }
            (None, DpopMode::Required) => {
                return Err(AuthError::Dpop(
                    "the token is not bound to a key (`cnf.jkt`)".into(),
                ));
            }
            (None, DpopMode::Optional | DpopMode::Off) => {}
        }
        let tenant = claims
            .get(&self.config.tenant_claim)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                AuthError::Invalid(format!(
                    "the token has no `{}` claim",
                    self.config.tenant_claim
                ))
            })?
            .to_string();
        let roles = match claims.get(&self.config.roles_claim) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .filter_map(Role::parse)
                .collect(),
            Some(Value::String(s)) => s.split_whitespace().filter_map(Role::parse).collect(),
            _ => vec![],
        };
        let client = ["client_id", "azp", "sub"]
            .iter()
            .find_map(|k| claims.get(*k).and_then(Value::as_str))
            .unwrap_or("unknown")
            .to_string();
        Ok(Caller {
            client,
            tenant,
            roles,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    use serde_json::json;

    fn jwks() -> String {
        let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b"top-secret-key-material");
        json!({"keys": [{"kty": "oct", "kid": "k1", "alg": "HS256", "k": k}]}).to_string()
    }

    fn token(claims: Value) -> String {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("k1".into());
        encode(
            &h,
            &claims,
            &EncodingKey::from_secret(b"top-secret-key-material"),
        )
        .unwrap()
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn presented(bearer: &str) -> Presented<'_> {
        Presented {
            bearer: Some(bearer),
            dpop: None,
            method: "POST",
            url: "http://localhost/v1/intents",
        }
    }

    fn auth(config: JwtAuthConfig) -> JwtAuth {
        JwtAuth::new(JwksSource::from_json(&jwks()).unwrap(), config)
    }

    #[tokio::test]
    async fn reads_tenant_roles_and_client() {
        let a = auth(JwtAuthConfig {
            issuers: vec!["https://idp".into()],
            audience: Some("telos".into()),
            ..Default::default()
        });
        let t = token(
            json!({"iss": "https://idp", "aud": "telos", "exp": now() + 60, "sub": "svc",
                             "client_id": "fe-2", "tenant": "acme", "roles": ["frontend", "bogus"]}),
        );
        let c = a.authenticate(&t, presented(&t)).await.unwrap();
        assert_eq!(
            (c.client.as_str(), c.tenant.as_str(), c.roles.clone()),
            ("fe-2", "acme", vec![Role::Frontend])
        );
    }

    #[tokio::test]
    async fn rejects_bad_tokens() {
        let a = auth(JwtAuthConfig {
            issuers: vec!["https://idp".into()],
            audience: Some("telos".into()),
            ..Default::default()
        });
        let base =
            json!({"iss": "https://idp", "aud": "telos", "exp": now() + 60, "tenant": "acme"});
        let with = |k: &str, v: Value| {
            let mut c = base.clone();
            c[k] = v;
            token(c)
        };
        for bad in [
            with("exp", json!(now() - 3600)),
            with("nbf", json!(now() + 3600)),
            with("iss", json!("https://evil")),
            with("aud", json!("other")),
            with("tenant", json!(null)),
        ] {
            assert!(
                a.authenticate(&bad, presented(&bad)).await.is_err(),
                "{bad}"
            );
        }
        let forged = encode(
            &Header::new(Algorithm::HS256),
            &base,
            &EncodingKey::from_secret(b"guess"),
        )
        .unwrap();
        assert!(a.authenticate(&forged, presented(&forged)).await.is_err());
        let dpop_required = auth(JwtAuthConfig {
            dpop: DpopMode::Required,
            ..Default::default()
        });
        let t = token(base);
        assert!(matches!(
            dpop_required.authenticate(&t, presented(&t)).await,
            Err(AuthError::Dpop(_))
        ));
    }

    fn key_set(kid: &str) -> Value {
        let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("secret-{kid}"));
        json!({"keys": [{"kty": "oct", "kid": kid, "alg": "HS256", "k": k}]})
    }

    /// A loopback JWKS endpoint serving `doc`, counting its requests.
    async fn jwks_server(
        doc: std::sync::Arc<std::sync::Mutex<Value>>,
        hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) -> String {
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let (doc, hits) = (doc.clone(), hits.clone());
                async move {
                    hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    axum::Json(doc.lock().unwrap().clone())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/jwks")
    }

    #[tokio::test]
    async fn a_url_key_set_is_cached_and_fetched_again_for_a_rotated_key() {
        use std::sync::atomic::Ordering::SeqCst;
        let doc = std::sync::Arc::new(std::sync::Mutex::new(key_set("k1")));
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let url = jwks_server(doc.clone(), hits.clone()).await;
        let source = JwksSource::url(url, Duration::ZERO).unwrap();
        assert!(source.key(Some("k1")).await.is_ok());
        assert!(source.key(Some("k1")).await.is_ok());
        assert_eq!(hits.load(SeqCst), 1, "a known kid is served from the cache");
        // The issuer rotates its key: a token with the new kid triggers a fetch.
        *doc.lock().unwrap() = key_set("k2");
        assert!(source.key(Some("k2")).await.is_ok());
        assert_eq!(hits.load(SeqCst), 2);
        // The retired key is gone from the refreshed set.
        assert!(source.key(Some("k1")).await.is_err());
    }

    #[tokio::test]
    async fn unknown_kids_do_not_fetch_more_than_once_per_interval() {
        use std::sync::atomic::Ordering::SeqCst;
        let doc = std::sync::Arc::new(std::sync::Mutex::new(key_set("k1")));
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let url = jwks_server(doc, hits.clone()).await;
        let source = JwksSource::url(url, Duration::from_secs(3600)).unwrap();
        assert!(source.key(Some("k1")).await.is_ok());
        for _ in 0..5 {
            assert!(matches!(
                source.key(Some("forged")).await,
                Err(AuthError::Invalid(_))
            ));
        }
        assert_eq!(
            hits.load(SeqCst),
            1,
            "forged kids cannot make telos hammer the issuer"
        );
    }

    #[tokio::test]
    async fn an_unreachable_jwks_url_rejects_the_token() {
        assert!(matches!(
            JwksSource::url("not a url".into(), Duration::ZERO),
            Err(AuthError::Config(_))
        ));
        let source = JwksSource::url("http://127.0.0.1:9/jwks".into(), Duration::ZERO).unwrap();
        assert!(matches!(
            source.key(Some("k1")).await,
            Err(AuthError::Invalid(_))
        ));
    }
}
