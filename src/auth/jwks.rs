//! OAuth2 bearer JWTs (RFC 7523 client assertions or access tokens)
//! verified against a JWKS from a file or a URL. A URL's key set is cached
//! and fetched again when a token names an unknown `kid` (at most once per
//! `refresh_every`), so rotated keys are picked up without a restart.
//!
//! Fetching is guarded: a URL must be `https://` (plain `http://` only on
//! a loopback host), redirects are refused, concurrent misses share one
//! fetch, a failed fetch starts an exponential back-off during which no
//! fetch is tried, and a cached set older than `max_age` is not trusted
//! (a key the issuer withdrew stops verifying without a restart).

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::Value;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use super::dpop::{DpopMode, ReplayCache, verify_proof};
use super::{AuthError, Caller, Presented, Role};

/// How a JWKS URL is fetched and cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksPolicy {
    /// Minimum time between two fetches for unknown `kid`s.
    pub refresh_every: Duration,
    /// A cached set older than this is fetched again before use.
    pub max_age: Duration,
    /// Back-off after the first failed fetch; doubles with each failure.
    pub backoff: Duration,
    /// Longest back-off.
    pub max_backoff: Duration,
}

impl Default for JwksPolicy {
    fn default() -> Self {
        Self {
            refresh_every: Duration::from_secs(30),
            max_age: Duration::from_secs(600),
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// The cached key set of a URL (internal state).
pub struct Cached {
    set: JwkSet,
    fetched: Option<Instant>,
    failures: u32,
    retry_at: Option<Instant>,
}

/// Where the keys come from.
pub enum JwksSource {
    /// A fixed key set (from a file).
    Static(JwkSet),
    /// A URL, fetched on start and refreshed on an unknown `kid`.
    Url {
        /// The JWKS URL.
        url: String,
        /// HTTP client (no redirects).
        client: reqwest::Client,
        /// The cached key set, when it was fetched, and the back-off.
        cache: RwLock<Cached>,
        /// Held by the one task fetching (single flight).
        fetching: tokio::sync::Mutex<()>,
        /// Fetch and cache policy.
        policy: JwksPolicy,
    },
}

fn no_key() -> AuthError {
    AuthError::Invalid("no key matches the token's `kid`".into())
}

fn poisoned() -> AuthError {
    AuthError::Config("JWKS cache poisoned".into())
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

    /// A JWKS URL (fetched lazily, then cached) with the default policy
    /// and `refresh_every`.
    pub fn url(url: String, refresh_every: Duration) -> Result<Self, AuthError> {
        Self::url_with(
            url,
            JwksPolicy {
                refresh_every,
                ..JwksPolicy::default()
            },
        )
    }

    /// A JWKS URL with an explicit policy. Refuses `http://` unless the
    /// host is a loopback address.
    pub fn url_with(url: String, policy: JwksPolicy) -> Result<Self, AuthError> {
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| AuthError::Config(format!("JWKS URL `{url}`: {e}")))?;
        let loopback = parsed.host_str().is_some_and(|h| {
            h == "localhost"
                || h.trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        match parsed.scheme() {
            "https" => {}
            "http" if loopback => {}
            other => {
                return Err(AuthError::Config(format!(
                    "JWKS URL `{url}`: the scheme must be https (`{other}` is accepted only on a loopback host)"
                )));
            }
        }
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none());
        // A key set on this machine is never fetched through a proxy.
        if loopback {
            builder = builder.no_proxy();
        }
        let client = builder
            .build()
            .map_err(|e| AuthError::Config(e.to_string()))?;
        Ok(Self::Url {
            url,
            client,
            cache: RwLock::new(Cached {
                set: JwkSet { keys: vec![] },
                fetched: None,
                failures: 0,
                retry_at: None,
            }),
            fetching: tokio::sync::Mutex::new(()),
            policy,
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
        let (url, client, cache, fetching, policy) = match self {
            Self::Static(set) => return pick(set).unwrap_or_else(|| Err(no_key())),
            Self::Url {
                url,
                client,
                cache,
                fetching,
                policy,
            } => (url, client, cache, fetching, policy),
        };
        // What the cache says, and whether a fetch is due.
        let look = || -> Result<Result<DecodingKey, Option<AuthError>>, AuthError> {
            let c = cache.read().map_err(|_| poisoned())?;
            let now = Instant::now();
            let fresh = c.fetched.is_some_and(|t| t.elapsed() < policy.max_age);
            if fresh && let Some(k) = pick(&c.set) {
                return Ok(k.map_err(Some));
            }
            if let Some(at) = c.retry_at
                && now < at
            {
                return Ok(Err(Some(AuthError::Invalid(
                    "the JWKS could not be fetched; retrying later".into(),
                ))));
            }
            let due = !fresh
                || c.fetched
                    .is_none_or(|t| t.elapsed() >= policy.refresh_every);
            Ok(Err((!due).then(no_key)))
        };
        match look()? {
            Ok(k) => return Ok(k),
            Err(Some(e)) => return Err(e),
            Err(None) => {}
        }
        // One fetch at a time; whoever waited looks again first.
        let _flight = fetching.lock().await;
        match look()? {
            Ok(k) => return Ok(k),
            Err(Some(e)) => return Err(e),
            Err(None) => {}
        }
        let fetched = async {
            let resp = client
                .get(url)
                .send()
                .await
                .map_err(|e| format!("fetching the JWKS: {e}"))?;
            if !resp.status().is_success() {
                return Err(format!(
                    "fetching the JWKS: status {} (redirects are not followed)",
                    resp.status()
                ));
            }
            resp.json::<JwkSet>()
                .await
                .map_err(|e| format!("reading the JWKS: {e}"))
        }
        .await;
        let mut c = cache.write().map_err(|_| poisoned())?;
        match fetched {
            Ok(set) => {
                let found = pick(&set);
                *c = Cached {
                    set,
                    fetched: Some(Instant::now()),
                    failures: 0,
                    retry_at: None,
                };
                found.unwrap_or_else(|| Err(no_key()))
            }
            Err(e) => {
                c.failures = c.failures.saturating_add(1);
                let wait = policy
                    .backoff
                    .saturating_mul(1u32 << (c.failures - 1).min(16))
                    .min(policy.max_backoff);
                c.retry_at = Some(Instant::now() + wait);
                Err(AuthError::Invalid(e))
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
            replay: ReplayCache::new(super::dpop::REPLAY_WINDOW, 100_000),
        }
    }

    /// Verifies a bearer JWT (and its DPoP proof) and reads the caller.
    pub async fn authenticate(&self, token: &str, p: Presented<'_>) -> Result<Caller, AuthError> {
        let header = decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let key = self.source.key(header.kid.as_deref()).await?;
        let mut v = Validation::new(header.alg);
        v.leeway = self.config.leeway;
        v.validate_nbf = true;
        // `iss` and `aud` must be present (and match when configured;
        // `serve` refuses JWT authentication without both configured).
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
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
        // A token without `iss` or `aud` is refused, naming the claim.
        for claim in ["iss", "aud"] {
            let mut c = base.clone();
            c.as_object_mut().unwrap().remove(claim);
            let t = token(c);
            match a.authenticate(&t, presented(&t)).await {
                Err(AuthError::Invalid(m)) => assert!(m.contains(claim), "{m}"),
                other => panic!("{claim}: {other:?}"),
            }
        }
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

    /// A loopback server: `/jwks` serves `doc` after `delay`, `/fail`
    /// answers 500, `/moved` redirects to `/jwks`; every route counts hits.
    async fn guarded_server(
        doc: Value,
        delay: Duration,
        hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) -> String {
        use axum::http::StatusCode;
        let count = move |hits: &std::sync::Arc<std::sync::atomic::AtomicUsize>| {
            hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        };
        let (h1, h2, h3) = (hits.clone(), hits.clone(), hits);
        let app = axum::Router::new()
            .route(
                "/jwks",
                axum::routing::get(move || {
                    let (doc, h) = (doc.clone(), h1.clone());
                    async move {
                        count(&h);
                        tokio::time::sleep(delay).await;
                        axum::Json(doc)
                    }
                }),
            )
            .route(
                "/fail",
                axum::routing::get(move || {
                    let h = h2.clone();
                    async move {
                        count(&h);
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                }),
            )
            .route(
                "/moved",
                axum::routing::get(move || {
                    let h = h3.clone();
                    async move {
                        count(&h);
                        (StatusCode::FOUND, [("location", "/jwks")])
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    #[test]
    fn plain_http_is_refused_except_on_loopback() {
        for bad in ["http://idp.example.com/jwks", "ftp://127.0.0.1/jwks"] {
            assert!(
                matches!(
                    JwksSource::url(bad.into(), Duration::ZERO),
                    Err(AuthError::Config(_))
                ),
                "{bad}"
            );
        }
        for good in [
            "https://idp.example.com/jwks",
            "http://127.0.0.1:1/jwks",
            "http://[::1]:1/jwks",
            "http://localhost:1/jwks",
        ] {
            assert!(
                JwksSource::url(good.into(), Duration::ZERO).is_ok(),
                "{good}"
            );
        }
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        use std::sync::atomic::Ordering::SeqCst;
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let base = guarded_server(key_set("k1"), Duration::ZERO, hits.clone()).await;
        let source = JwksSource::url(format!("{base}/moved"), Duration::ZERO).unwrap();
        assert!(source.key(Some("k1")).await.is_err());
        assert_eq!(hits.load(SeqCst), 1, "only the redirect was requested");
    }

    #[tokio::test]
    async fn a_failed_fetch_backs_off() {
        use std::sync::atomic::Ordering::SeqCst;
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let base = guarded_server(key_set("k1"), Duration::ZERO, hits.clone()).await;
        let source = JwksSource::url_with(
            format!("{base}/fail"),
            JwksPolicy {
                refresh_every: Duration::ZERO,
                backoff: Duration::from_millis(300),
                ..JwksPolicy::default()
            },
        )
        .unwrap();
        for _ in 0..5 {
            assert!(source.key(Some("k1")).await.is_err());
        }
        assert_eq!(hits.load(SeqCst), 1, "no fetch during the back-off");
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(source.key(Some("k1")).await.is_err());
        assert_eq!(
            hits.load(SeqCst),
            2,
            "tried again once the back-off elapsed"
        );
        // The second failure doubles the back-off.
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(source.key(Some("k1")).await.is_err());
        assert_eq!(hits.load(SeqCst), 2);
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_fetch() {
        use std::sync::atomic::Ordering::SeqCst;
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let base = guarded_server(key_set("k1"), Duration::from_millis(100), hits.clone()).await;
        let source =
            std::sync::Arc::new(JwksSource::url(format!("{base}/jwks"), Duration::ZERO).unwrap());
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let s = source.clone();
                tokio::spawn(async move { s.key(Some("k1")).await.is_ok() })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap());
        }
        assert_eq!(hits.load(SeqCst), 1);
    }

    #[tokio::test]
    async fn a_withdrawn_key_stops_verifying_after_the_max_age() {
        use std::sync::atomic::Ordering::SeqCst;
        let doc = std::sync::Arc::new(std::sync::Mutex::new(key_set("k1")));
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let url = jwks_server(doc.clone(), hits.clone()).await;
        let source = JwksSource::url_with(
            url,
            JwksPolicy {
                refresh_every: Duration::from_secs(3600),
                max_age: Duration::from_millis(200),
                ..JwksPolicy::default()
            },
        )
        .unwrap();
        assert!(source.key(Some("k1")).await.is_ok());
        *doc.lock().unwrap() = key_set("k2");
        assert!(source.key(Some("k1")).await.is_ok(), "still within max age");
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(source.key(Some("k1")).await.is_err());
        assert_eq!(hits.load(SeqCst), 2);
    }
}
