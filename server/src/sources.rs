//! Abuse control without identifiers (DESIGN.md section 7): what one traffic source may hold
//! and send, kept in memory only.
//!
//! A *source* is the /24 prefix of an IPv4 peer or the /48 prefix of an IPv6 peer, and it is
//! known here only as a keyed hash of that prefix: [`Sources::key`] hashes with SipHash under a
//! key drawn at random when the process starts ([`RandomState`]), so the same prefix has a
//! different key in every process, and nothing here is ever written to disk or to logs.
//!
//! Two limits use that key:
//! - connections: one source may hold at most a share of the server's connection slots
//!   ([`Sources::connect`]), so a source that opens as many connections as it can leaves the
//!   rest to everyone else;
//! - uploads: a token bucket per source ([`Sources::take_upload`]): `burst` uploads at once,
//!   refilled at `rate` a second. Beyond it, 429 with `Retry-After`.
//!
//! What this cannot stop: many sources (a botnet, addresses across many /24s of a cloud),
//! or one source that stays under the rate for days. See docs/privacy.md.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The per-source upload limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Uploads a second that refill the bucket.
    pub rate: f64,
    /// Uploads accepted at once from a full bucket.
    pub burst: f64,
}

impl RateLimit {
    /// The default: 1 upload a second sustained (86,400 a day) after a burst of 2,000, far
    /// above what an honest NAT of thousands of installs sends (each uploads once a day).
    pub const DEFAULT: RateLimit = RateLimit {
        rate: 1.0,
        burst: 2000.0,
    };
}

/// The prefix that names a source: /24 for IPv4 (and IPv4-mapped IPv6), /48 for IPv6.
pub fn prefix(ip: IpAddr) -> [u8; 6] {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            [4, o[0], o[1], o[2], 0, 0]
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            [o[0], o[1], o[2], o[3], o[4], o[5]]
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Per-source state: connection counts and upload buckets, keyed by a per-process keyed hash.
pub struct Sources {
    hasher: RandomState,
    /// Peers that carry many sources' traffic (trusted proxies): no connection share.
    proxies: Vec<IpAddr>,
    max_connections: usize,
    connections: Mutex<HashMap<u64, usize>>,
    limit: Option<RateLimit>,
    buckets: Mutex<HashMap<u64, Bucket>>,
}

/// One accepted connection of a source; gives its slot back when dropped.
pub struct ConnectionSlot {
    sources: Arc<Sources>,
    /// `None` for a trusted proxy's connection, which is not counted.
    key: Option<u64>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut map = self
            .sources
            .connections
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&key);
            }
        }
    }
}

impl Sources {
    /// Sources that may each hold `max_connections` connections and send uploads within
    /// `limit` (`None`: no upload limit). Connections from `proxies` are not limited (the
    /// upload limit applies to the clients they name, see [`crate::http`]).
    pub fn new(max_connections: usize, limit: Option<RateLimit>, proxies: &[IpAddr]) -> Sources {
        Sources {
            hasher: RandomState::new(),
            proxies: proxies.to_vec(),
            max_connections: max_connections.max(1),
            connections: Mutex::new(HashMap::new()),
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The keyed hash of `ip`'s source prefix.
    pub fn key(&self, ip: IpAddr) -> u64 {
        self.hasher.hash_one(prefix(ip))
    }

    /// A connection slot for a peer at `ip`, or `None` when its source holds its share already.
    pub fn connect(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionSlot> {
        if self.proxies.contains(&ip) {
            return Some(ConnectionSlot {
                sources: self.clone(),
                key: None,
            });
        }
        let key = self.key(ip);
        let mut map = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(key).or_default();
        if *n >= self.max_connections {
            return None;
        }
        *n += 1;
        Some(ConnectionSlot {
            sources: self.clone(),
            key: Some(key),
        })
    }

    /// Takes one upload from the bucket of `ip`'s source: `Ok` when allowed, otherwise the
    /// time until the next upload would be.
    pub fn take_upload(&self, ip: IpAddr) -> Result<(), Duration> {
        self.take_upload_at(ip, Instant::now())
    }

    fn take_upload_at(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let key = self.key(ip);
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(&key) {
            // Forget the buckets that are full again (they are the same as new ones).
            map.retain(|_, b| b.tokens + refill(limit, b.at, now) < limit.burst);
        }
        let b = map.entry(key).or_insert(Bucket {
            tokens: limit.burst,
            at: now,
        });
        b.tokens = (b.tokens + refill(limit, b.at, now)).min(limit.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / limit.rate))
        }
    }
}

/// Buckets kept before full ones are forgotten.
const MAX_TRACKED: usize = 100_000;

fn refill(limit: RateLimit, since: Instant, now: Instant) -> f64 {
    now.saturating_duration_since(since).as_secs_f64() * limit.rate
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes_are_slash_24_and_slash_48() {
        assert_eq!(prefix(ip("10.1.2.3")), prefix(ip("10.1.2.200")));
        assert_ne!(prefix(ip("10.1.2.3")), prefix(ip("10.1.3.3")));
        assert_eq!(prefix(ip("::ffff:10.1.2.9")), prefix(ip("10.1.2.3")));
        assert_eq!(
            prefix(ip("2001:db8:1::1")),
            prefix(ip("2001:db8:1:ffff::2"))
        );
        assert_ne!(prefix(ip("2001:db8:1::1")), prefix(ip("2001:db8:2::1")));
    }

    #[test]
    fn keys_differ_between_processes_but_not_within() {
        let (a, b) = (Sources::new(1, None, &[]), Sources::new(1, None, &[]));
        assert_eq!(a.key(ip("192.0.2.1")), a.key(ip("192.0.2.77")));
        // Two random SipHash keys agree on a value with probability 2^-64.
        assert_ne!(a.key(ip("192.0.2.1")), b.key(ip("192.0.2.1")));
    }

    #[test]
    fn connection_share_is_per_source_and_given_back() {
        let s = Arc::new(Sources::new(2, None, &[ip("10.9.9.9")]));
        let a1 = s.connect(ip("127.0.0.1")).unwrap();
        let _a2 = s.connect(ip("127.0.0.9")).unwrap();
        assert!(s.connect(ip("127.0.0.3")).is_none());
        assert!(s.connect(ip("127.0.1.1")).is_some());
        drop(a1);
        assert!(s.connect(ip("127.0.0.3")).is_some());
        // A trusted proxy carries many sources: it has no share.
        let proxied: Vec<_> = (0..10)
            .map(|_| s.connect(ip("10.9.9.9")).unwrap())
            .collect();
        drop(proxied);
        assert!(s.connect(ip("10.9.9.1")).is_some());
    }

    #[test]
    fn bucket_allows_the_burst_then_the_rate() {
        let s = Sources::new(
            1,
            Some(RateLimit {
                rate: 2.0,
                burst: 3.0,
            }),
            &[],
        );
        let t0 = Instant::now();
        let a = ip("198.51.100.7");
        for _ in 0..3 {
            assert!(s.take_upload_at(a, t0).is_ok());
        }
        let wait = s.take_upload_at(a, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Another source is unaffected.
        assert!(s.take_upload_at(ip("198.51.101.7"), t0).is_ok());
        // Half a second refills one upload.
        assert!(s.take_upload_at(a, t0 + Duration::from_millis(500)).is_ok());
        assert!(
            s.take_upload_at(a, t0 + Duration::from_millis(500))
                .is_err()
        );
    }

    #[test]
    fn no_limit_allows_everything() {
        let s = Sources::new(1, None, &[]);
        for _ in 0..10_000 {
            assert!(s.take_upload(ip("203.0.113.1")).is_ok());
        }
    }
}
