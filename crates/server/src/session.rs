//! Signed-in sessions of the pages: a person signs in with their token once and then carries a
//! cookie (`waygate_session`) instead. `docs/web.md` ("Signing in") describes what a person sees.
//!
//! The cookie's value is 32 random bytes from the operating system; the table keeps only its
//! SHA-256, so a copy of the server's memory does not give anyone a cookie. A session keeps
//! the hash of the token it was opened with, never the token: every request looks that hash up
//! in the tokens file as it is now ([`crate::tokens::Tokens::holder`]), so revoking the token
//! (or replacing it) ends its sessions at once, and a change of roles applies at the next
//! request. A session ends at sign-out, after [`IDLE`] without a request, or [`ABSOLUTE`] after
//! sign-in, whichever comes first.
//!
//! Each session has its own CSRF token (a synchronizer token): every form that changes
//! something carries it in a hidden `csrf` field, compared in constant time.
//!
//! Sessions live in this process's memory: after a restart, or on another replica, a person
//! signs in again (a bearer token works everywhere).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "waygate_session";

/// A session ends this long after sign-in, however busy.
pub const ABSOLUTE: Duration = Duration::from_secs(8 * 60 * 60);

/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::from_secs(30 * 60);

/// The most sessions kept at once: past it, the one least recently used is ended.
const MOST: usize = 10_000;

/// One signed-in person.
#[derive(Debug)]
pub struct Session {
    /// The actor who signed in (a session whose token now belongs to someone else, or to no
    /// one, counts for nothing).
    pub actor: String,
    /// SHA-256 of the token signed in with, as the tokens file keeps it.
    pub token_sha256: String,
    /// The synchronizer token every changing form of this session carries.
    pub csrf: String,
    key: [u8; 32],
    opened: Instant,
    used: Mutex<Instant>,
}

impl Session {
    /// Whether `presented` is this session's CSRF token, compared in constant time.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }

    fn expired(&self, now: Instant) -> bool {
        let used = *self.used.lock().unwrap_or_else(|p| p.into_inner());
        now.duration_since(self.opened) >= ABSOLUTE || now.duration_since(used) >= IDLE
    }
}

/// The sessions of this process, by the SHA-256 of their cookie.
#[derive(Debug, Default)]
pub struct Sessions {
    table: Mutex<HashMap<[u8; 32], Arc<Session>>>,
}

/// The operating system gave no random bytes.
#[derive(Debug, thiserror::Error)]
#[error("cannot make a random session: {0}")]
pub struct NoRandom(String);

fn random_hex() -> Result<String, NoRandom> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| NoRandom(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn key(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.as_bytes()).into()
}

impl Sessions {
    /// Opens a session for `actor`, signed in with the token whose hash is `token_sha256`;
    /// returns the cookie's value (kept nowhere on the server) and the session.
    pub fn open(
        &self,
        actor: &str,
        token_sha256: &str,
    ) -> Result<(String, Arc<Session>), NoRandom> {
        let cookie = random_hex()?;
        let now = Instant::now();
        let session = Arc::new(Session {
            actor: actor.to_owned(),
            token_sha256: token_sha256.to_owned(),
            csrf: random_hex()?,
            key: key(&cookie),
            opened: now,
            used: Mutex::new(now),
        });
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if table.len() >= MOST {
            table.retain(|_, s| !s.expired(now));
        }
        if table.len() >= MOST {
            let oldest = table
                .values()
                .min_by_key(|s| *s.used.lock().unwrap_or_else(|p| p.into_inner()))
                .map(|s| s.key);
            if let Some(k) = oldest {
                table.remove(&k);
            }
        }
        table.insert(session.key, session.clone());
        Ok((cookie, session))
    }

    /// The live session whose cookie is `cookie`, marked used now; an expired one is ended.
    pub fn find(&self, cookie: &str) -> Option<Arc<Session>> {
        let k = key(cookie);
        let now = Instant::now();
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let session = table.get(&k)?.clone();
        if session.expired(now) {
            table.remove(&k);
            return None;
        }
        *session.used.lock().unwrap_or_else(|p| p.into_inner()) = now;
        Some(session)
    }

    /// Whether `session` is still open (not ended, not expired), without marking it used:
    /// an open stream is not a request.
    pub fn is_open(&self, session: &Session) -> bool {
        let table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table
            .get(&session.key)
            .is_some_and(|s| std::ptr::eq(Arc::as_ptr(s), session) && !s.expired(Instant::now()))
    }

    /// Ends `session`: its cookie is worth nothing from now on.
    pub fn end(&self, session: &Session) {
        self.table
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&session.key);
    }
}

/// The value of the session cookie among a request's `Cookie` headers, if any.
pub fn cookie_value<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    headers
        .into_iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value that gives the browser `value`; `secure` when the server has TLS.
pub fn set_cookie(value: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        ABSOLUTE.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that makes the browser forget the cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_cookie_only_until_it_ends() {
        let sessions = Sessions::default();
        let (cookie, session) = sessions.open("ana", "ab").expect("opened");
        assert_eq!(cookie.len(), 64);
        assert_eq!(sessions.find(&cookie).expect("found").actor, "ana");
        assert!(sessions.find("0000").is_none());
        assert!(session.csrf_matches(&session.csrf.clone()));
        assert!(!session.csrf_matches(""));
        assert!(!session.csrf_matches(&cookie));
        sessions.end(&session);
        assert!(sessions.find(&cookie).is_none());
    }

    #[test]
    fn an_idle_or_old_session_is_expired() {
        let sessions = Sessions::default();
        let (cookie, session) = sessions.open("ana", "ab").expect("opened");
        let now = Instant::now() + IDLE;
        assert!(session.expired(now));
        *session.used.lock().expect("lock") = now;
        assert!(!session.expired(now));
        assert!(session.expired(session.opened + ABSOLUTE));
        *session.used.lock().expect("lock") = session.opened;
        assert!(sessions.find(&cookie).is_some());
    }

    #[test]
    fn the_cookie_is_read_among_others() {
        // (Cookie headers, the session cookie's value)
        let cases: [(&[&str], Option<&str>); 5] = [
            (&["waygate_session=abc"], Some("abc")),
            (&["a=1; waygate_session=abc; b=2"], Some("abc")),
            (&["a=1", "waygate_session=abc"], Some("abc")),
            (&["waygate_session="], None),
            (&["xwaygate_session=abc"], None),
        ];
        for (headers, want) in cases {
            assert_eq!(cookie_value(headers.iter().copied()), want, "{headers:?}");
        }
        let set = set_cookie("v", true);
        for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
            assert!(set.contains(part), "{set}");
        }
        assert!(!set_cookie("v", false).contains("Secure"));
    }
}
