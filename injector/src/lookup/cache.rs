//! The lookups' cache: answers kept for a while per key, a bounded number
//! of keys (the oldest evicted first), and one request per key at a time
//! (callers that miss while a request for their key is under way wait for
//! its answer instead of sending their own).
//!
//! Found and not-found answers are kept 60 s; failures 5 s. Failures are
//! kept at all because the webhook sees pods in bursts (a rollout, 200
//! reviews a second): without it a hanging API would hold every one of
//! them for the full 1 s budget and receive every request. Five seconds is
//! short enough that a fixed API (or RBAC rule) is seen almost at once.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// How long answers are kept, and how many keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// Found and not-found answers.
    pub answer_ttl: Duration,
    /// Failed lookups (timeout, denied, throttled, error).
    pub failure_ttl: Duration,
    pub max_entries: usize,
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy {
            answer_ttl: Duration::from_secs(60),
            failure_ttl: Duration::from_secs(5),
            max_entries: 10_000,
        }
    }
}

type Flight<V> = watch::Receiver<Option<V>>;

struct Inner<K, V> {
    entries: HashMap<K, (Instant, V)>,
    /// Keys in insertion order with their stamp; a key re-inserted later
    /// leaves a stale pair here that eviction skips.
    order: VecDeque<(K, Instant)>,
    in_flight: HashMap<K, Flight<V>>,
}

pub struct Cache<K, V> {
    policy: CachePolicy,
    inner: Mutex<Inner<K, V>>,
}

/// How long a caller waits on another caller's request for its key, and
/// what it answers when that takes longer: it sends no request of its own,
/// since the wait has spent its budget.
pub struct Wait<V> {
    pub limit: Duration,
    pub too_slow: fn() -> V,
}

/// What [`Cache::get_or_fetch`] returned and whether it sent a request.
pub struct Got<V> {
    pub value: V,
    /// From the cache or from another caller's request.
    pub cached: bool,
}

impl<K: Eq + Hash + Clone, V: Clone> Cache<K, V> {
    pub fn new(policy: CachePolicy) -> Self {
        Cache {
            policy,
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
                in_flight: HashMap::new(),
            }),
        }
    }

    /// The kept answer for `key`, else the answer of the request under way
    /// for it, else `fetch`'s. `failed` says which answers are failures
    /// (kept for the shorter time); `wait` bounds the wait on another
    /// caller's request. When that request is abandoned (its caller was
    /// dropped), `fetch` runs here.
    pub async fn get_or_fetch<F, Fut>(
        &self,
        key: K,
        failed: impl Fn(&V) -> bool,
        wait: Wait<V>,
        fetch: F,
    ) -> Got<V>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = V>,
    {
        let sender = match self.lookup(&key, &failed) {
            Lookup::Hit(value) => {
                return Got {
                    value,
                    cached: true,
                }
            }
            Lookup::Wait(mut flight) => {
                let done = tokio::time::timeout(wait.limit, flight.wait_for(Option::is_some));
                let value = match done.await {
                    Err(_) => Some((wait.too_slow)()),
                    Ok(Ok(value)) => value.clone(),
                    Ok(Err(_)) => None,
                };
                if let Some(value) = value {
                    return Got {
                        value,
                        cached: true,
                    };
                }
                // The other request was abandoned: ask ourselves, without
                // joining the flight again.
                None
            }
            Lookup::Lead(sender) => Some(sender),
        };
        let mut guard = Leading {
            cache: self,
            key: sender.as_ref().map(|_| key.clone()),
        };
        let value = fetch().await;
        self.insert(key, value.clone(), &failed);
        if let Some(sender) = sender {
            let _ = sender.send(Some(value.clone()));
        }
        guard.finish();
        Got {
            value,
            cached: false,
        }
    }

    fn lookup(&self, key: &K, failed: &impl Fn(&V) -> bool) -> Lookup<V> {
        let mut inner = self.lock();
        if let Some((at, value)) = inner.entries.get(key) {
            let ttl = match failed(value) {
                true => self.policy.failure_ttl,
                false => self.policy.answer_ttl,
            };
            if at.elapsed() < ttl {
                return Lookup::Hit(value.clone());
            }
            inner.entries.remove(key);
        }
        if let Some(flight) = inner.in_flight.get(key) {
            return Lookup::Wait(flight.clone());
        }
        let (sender, receiver) = watch::channel(None);
        inner.in_flight.insert(key.clone(), receiver);
        Lookup::Lead(sender)
    }

    fn insert(&self, key: K, value: V, failed: &impl Fn(&V) -> bool) {
        let ttl = match failed(&value) {
            true => self.policy.failure_ttl,
            false => self.policy.answer_ttl,
        };
        if ttl.is_zero() || self.policy.max_entries == 0 {
            return;
        }
        let mut inner = self.lock();
        let now = Instant::now();
        inner.entries.insert(key.clone(), (now, value));
        inner.order.push_back((key, now));
        while inner.entries.len() > self.policy.max_entries {
            let Some((old, stamp)) = inner.order.pop_front() else {
                break;
            };
            if inner.entries.get(&old).is_some_and(|(at, _)| *at == stamp) {
                inner.entries.remove(&old);
            }
        }
        // Stale pairs (re-inserted or expired keys) must not grow the queue
        // past a bound of its own.
        if inner.order.len() > 2 * self.policy.max_entries.max(1) {
            let Inner { entries, order, .. } = &mut *inner;
            order.retain(|(k, stamp)| entries.get(k).is_some_and(|(at, _)| at == stamp));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        // A panic elsewhere while holding the lock leaves the maps whole
        // (every change is one call), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

enum Lookup<V> {
    Hit(V),
    Wait(Flight<V>),
    Lead(watch::Sender<Option<V>>),
}

/// Removes the caller's in-flight mark when its request ends or is
/// abandoned (the webhook's own deadline dropped the future), so that the
/// next caller does not wait on a request nobody is making.
struct Leading<'a, K: Eq + Hash, V> {
    cache: &'a Cache<K, V>,
    key: Option<K>,
}

impl<K: Eq + Hash, V> Leading<'_, K, V> {
    fn finish(&mut self) {
        if let Some(key) = self.key.take() {
            let mut inner = self.cache.inner.lock().unwrap_or_else(|p| p.into_inner());
            inner.in_flight.remove(&key);
        }
    }
}

impl<K: Eq + Hash, V> Drop for Leading<'_, K, V> {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    const WAIT: Wait<&'static str> = Wait {
        limit: Duration::from_secs(1),
        too_slow: || "too slow",
    };

    fn failed(v: &&'static str) -> bool {
        *v == "failed"
    }

    #[tokio::test(start_paused = true)]
    async fn answers_are_kept_a_minute_and_failures_five_seconds() {
        let cache = Cache::new(CachePolicy::default());
        let got = cache
            .get_or_fetch("a", failed, WAIT, || async { "found" })
            .await;
        assert!(!got.cached);
        let got = cache
            .get_or_fetch("a", failed, WAIT, || async { "x" })
            .await;
        assert_eq!((got.value, got.cached), ("found", true));
        cache
            .get_or_fetch("b", failed, WAIT, || async { "failed" })
            .await;
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(
            cache
                .get_or_fetch("b", failed, WAIT, || async { "x" })
                .await
                .cached
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        let got = cache
            .get_or_fetch("b", failed, WAIT, || async { "found" })
            .await;
        assert_eq!((got.value, got.cached), ("found", false));
        tokio::time::advance(Duration::from_secs(55)).await;
        let got = cache
            .get_or_fetch("a", failed, WAIT, || async { "again" })
            .await;
        assert_eq!((got.value, got.cached), ("again", false));
    }

    #[tokio::test]
    async fn the_oldest_key_is_evicted_past_the_bound() {
        let cache = Cache::new(CachePolicy {
            max_entries: 2,
            ..CachePolicy::default()
        });
        for key in ["a", "b", "c"] {
            cache
                .get_or_fetch(key, failed, WAIT, || async { "found" })
                .await;
        }
        assert_eq!(cache.len(), 2);
        assert!(
            !cache
                .get_or_fetch("a", failed, WAIT, || async { "found" })
                .await
                .cached
        );
        assert!(
            cache
                .get_or_fetch("c", failed, WAIT, || async { "found" })
                .await
                .cached
        );
    }

    #[tokio::test]
    async fn concurrent_misses_for_one_key_send_one_request() {
        let cache = Arc::new(Cache::new(CachePolicy::default()));
        let calls = Arc::new(AtomicUsize::new(0));
        let (release, released) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let (cache, calls, mut released) = (cache.clone(), calls.clone(), released.clone());
            tasks.spawn(async move {
                cache
                    .get_or_fetch("k", failed, LONG, || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        let _ = released.wait_for(|r| *r).await;
                        "found"
                    })
                    .await
                    .cached
            });
        }
        // Every task has either taken the lead or is waiting on it once
        // the one request has started.
        tokio::time::timeout(Duration::from_secs(30), async {
            while calls.load(Ordering::SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        release.send(true).unwrap();
        let mut cached = 0;
        while let Some(hit) = tasks.join_next().await {
            cached += usize::from(hit.unwrap());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(cached, 9);
    }

    const LONG: Wait<&'static str> = Wait {
        limit: Duration::from_secs(30),
        too_slow: || "too slow",
    };

    #[tokio::test(start_paused = true)]
    async fn a_caller_waits_on_a_slow_request_no_longer_than_its_limit() {
        let cache = Arc::new(Cache::new(CachePolicy::default()));
        let leader = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_fetch("k", failed, WAIT, || async {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        "found"
                    })
                    .await
            })
        };
        // The leader is under way once its flight is registered.
        while cache.lock().in_flight.is_empty() {
            tokio::task::yield_now().await;
        }
        let started = Instant::now();
        let got = cache
            .get_or_fetch("k", failed, WAIT, || async { "asked" })
            .await;
        assert_eq!((got.value, got.cached), ("too slow", true));
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert_eq!(leader.await.unwrap().value, "found");
    }

    #[tokio::test]
    async fn an_abandoned_request_does_not_hold_the_next_caller() {
        let cache = Cache::new(CachePolicy::default());
        let abandoned = tokio::time::timeout(
            Duration::from_millis(10),
            cache.get_or_fetch("k", failed, WAIT, std::future::pending::<&'static str>),
        )
        .await;
        assert!(abandoned.is_err());
        let got = cache
            .get_or_fetch("k", failed, WAIT, || async { "found" })
            .await;
        assert_eq!((got.value, got.cached), ("found", false));
    }
}
