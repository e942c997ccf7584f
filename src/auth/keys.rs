//! API keys from `--auth-keys FILE`: a JSON array of
//! `{"client", "tenant", "roles", "sha256"}`. Only the sha256 of each key
//! is kept; a presented key is hashed and compared with every entry in
//! constant time.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AuthError, Caller, Role};

/// One entry of the keys file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Client id.
    pub client: String,
    /// Its tenant.
    pub tenant: String,
    /// Its roles.
    pub roles: Vec<String>,
    /// Hex sha256 of the key.
    pub sha256: String,
}

struct Entry {
    hash: [u8; 32],
    caller: Caller,
}

/// The loaded keys.
pub struct ApiKeys {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("keys", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl ApiKeys {
    /// Parses and checks a keys file.
    pub fn from_json(text: &str) -> Result<Self, AuthError> {
        let keys: Vec<ApiKey> =
            serde_json::from_str(text).map_err(|e| AuthError::Config(format!("auth keys: {e}")))?;
        let mut entries = Vec::with_capacity(keys.len());
        for k in keys {
            let bytes = hex::decode(&k.sha256)
                .map_err(|e| AuthError::Config(format!("key of `{}`: {e}", k.client)))?;
            let hash: [u8; 32] = bytes.try_into().map_err(|_| {
                AuthError::Config(format!(
                    "key of `{}`: sha256 must be 64 hex digits",
                    k.client
                ))
            })?;
            let roles = k
                .roles
                .iter()
                .map(|r| {
                    Role::parse(r).ok_or_else(|| {
                        AuthError::Config(format!("unknown role `{r}` of `{}`", k.client))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if k.tenant.is_empty() || k.client.is_empty() {
                return Err(AuthError::Config(
                    "every key needs a client and a tenant".into(),
                ));
            }
            entries.push(Entry {
                hash,
                caller: Caller {
                    client: k.client,
                    tenant: k.tenant,
                    roles,
                },
            });
        }
        if entries.is_empty() {
            return Err(AuthError::Config("the auth keys file lists no key".into()));
        }
        Ok(Self { entries })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The caller a presented key belongs to. Every entry is compared, in
    /// constant time, so the time taken does not reveal which one matched.
    pub fn find(&self, key: &str) -> Option<Caller> {
        let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut found = None;
        for e in &self.entries {
            if bool::from(e.hash.ct_eq(&presented)) {
                found = Some(e.caller.clone());
            }
        }
        found
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_file() -> String {
        let h = |k: &str| hex::encode(Sha256::digest(k.as_bytes()));
        serde_json::json!([
            {"client": "fe-1", "tenant": "acme", "roles": ["frontend"], "sha256": h("fe-secret")},
            {"client": "pep-1", "tenant": "acme", "roles": ["pep", "analyst"], "sha256": h("pep-secret")}
        ])
        .to_string()
    }

    #[test]
    fn finds_keys_by_hash() {
        let keys = ApiKeys::from_json(&sample_file()).unwrap();
        assert_eq!(keys.len(), 2);
        let c = keys.find("pep-secret").unwrap();
        assert_eq!((c.client.as_str(), c.tenant.as_str()), ("pep-1", "acme"));
        assert_eq!(c.roles, vec![Role::Pep, Role::Analyst]);
        assert!(keys.find("fe-secre").is_none());
    }

    #[test]
    fn rejects_bad_files() {
        assert!(ApiKeys::from_json("[]").is_err());
        assert!(
            ApiKeys::from_json(
                r#"[{"client": "a", "tenant": "t", "roles": ["root"], "sha256": "00"}]"#
            )
            .is_err()
        );
        let bad_role = format!(
            r#"[{{"client": "a", "tenant": "t", "roles": ["root"], "sha256": "{}"}}]"#,
            "0".repeat(64)
        );
        assert!(
            ApiKeys::from_json(&bad_role)
                .unwrap_err()
                .to_string()
                .contains("root")
        );
        assert!(ApiKeys::from_json(r#"{"client": "a"}"#).is_err());
    }
}
