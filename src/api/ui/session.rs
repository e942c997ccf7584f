//! Analyst sessions: an API key exchanged on the login form for a random
//! session id kept in memory (at most `max` sessions, each for `ttl`), and
//! the CSRF tokens of the forms.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

use crate::auth::Caller;

/// One signed-in analyst.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who signed in.
    pub caller: Caller,
    /// The token every form of this session carries.
    pub csrf: String,
    /// When the session ends.
    pub expires: Instant,
}

/// The sessions of this process.
#[derive(Debug)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Session>>,
    ttl: Duration,
    max: usize,
}

/// 32 random bytes as hex; `None` only when the OS has no randomness.
pub fn token() -> Option<String> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).ok()?;
    Some(hex::encode(buf))
}

/// Whether a token sent with a form equals the expected one (constant
/// time; an empty token never matches).
pub fn same_token(sent: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(sent.as_bytes().ct_eq(expected.as_bytes()))
}

impl Sessions {
    /// Sessions that last `ttl`, at most `max` at a time (the one closest
    /// to its end is dropped to make room).
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            inner: Mutex::new(HashMap::new()),
            ttl,
            max: max.max(1),
        }
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a session for `caller`: its id and CSRF token.
    pub fn create(&self, caller: Caller) -> Option<(String, Session)> {
        let id = token()?;
        let session = Session {
            caller,
            csrf: token()?,
            expires: Instant::now() + self.ttl,
        };
        let mut map = self.lock();
        if map.len() >= self.max {
            let now = Instant::now();
            map.retain(|_, s| s.expires > now);
        }
        if map.len() >= self.max
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(id.clone(), session.clone());
        Some((id, session))
    }

    /// The live session `id`, if any (an expired one is removed).
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.lock();
        match map.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends session `id`.
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Sessions held, expired ones included until they are next seen.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_are_capped() {
        let s = Sessions::new(Duration::from_secs(60), 2);
        let (a, sa) = s.create(Caller::anonymous()).unwrap();
        let (b, _) = s.create(Caller::anonymous()).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(s.get(&a).unwrap().csrf, sa.csrf);
        let (c, _) = s.create(Caller::anonymous()).unwrap();
        assert_eq!(s.len(), 2, "the cap holds");
        assert!(s.get(&a).is_none(), "the oldest made room");
        assert!(s.get(&b).is_some() && s.get(&c).is_some());
        s.remove(&b);
        assert!(s.get(&b).is_none());

        let short = Sessions::new(Duration::ZERO, 10);
        let (d, _) = short.create(Caller::anonymous()).unwrap();
        assert!(short.get(&d).is_none(), "expired");
        assert!(short.is_empty());
    }

    #[test]
    fn tokens_compare_exactly() {
        let t = token().unwrap();
        assert!(same_token(&t, &t));
        assert!(!same_token(&t[..63], &t));
        assert!(!same_token("", ""));
    }
}
