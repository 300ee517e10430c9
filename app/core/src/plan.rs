//! "What to sync" as pure functions: how many outbox mutations go in the next
//! push, how an HTTP answer is classified, how long to wait before retrying.
//! The network code only executes these decisions.

use std::time::Duration;

use ocop_shared::wire::{MAX_BATCH_MUTATIONS, MAX_BODY_BYTES};

/// Pending mutation as the planner sees it: id and body size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub id: u64,
    pub bytes: usize,
}

/// How many of `pending` (oldest first) to send next: at most `limit` (itself
/// capped by the protocol's batch size) and under half the server's body
/// limit, but always at least one so a single large mutation still gets a
/// definite answer from the server.
pub fn next_batch(pending: &[Pending], limit: usize) -> usize {
    let limit = limit.clamp(1, MAX_BATCH_MUTATIONS);
    let budget = MAX_BODY_BYTES / 2;
    let mut bytes = 0usize;
    let mut n = 0usize;
    for p in pending.iter().take(limit) {
        if n > 0 && bytes + p.bytes > budget {
            break;
        }
        bytes += p.bytes + 1;
        n += 1;
    }
    n
}

/// What went wrong with one HTTP exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Try again later, unchanged: offline, timeout, 408, 429, 5xx, or a 2xx
    /// whose body is not the JSON we expect (a captive portal's login page).
    Transient(String),
    /// 401: the token is gone. Keep everything; ask the user to sign in.
    Unauthorized,
    /// Any other 4xx: sending the same request again cannot help.
    Permanent { status: u16, message: String },
    /// A pull's cursor is past the server's last change: the server was
    /// restored from an older backup. Pull from 0 again, keep the outbox.
    CursorAhead { server_seq: u64 },
}

/// The class of an HTTP status, before looking at the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusClass {
    Success,
    Unauthorized,
    Transient,
    Permanent,
}

pub fn classify_status(status: u16) -> StatusClass {
    match status {
        200..=299 => StatusClass::Success,
        401 => StatusClass::Unauthorized,
        408 | 425 | 429 => StatusClass::Transient,
        500..=599 => StatusClass::Transient,
        // 1xx/3xx should not reach us (redirects are followed): not ours, retry.
        100..=199 | 300..=399 => StatusClass::Transient,
        _ => StatusClass::Permanent,
    }
}

/// Delay before retry number `attempt` (1 = first retry): exponential from
/// 1 s, capped at 5 min, with "equal jitter" (half fixed, half random, from
/// `jitter` in [0, 1)) so devices that lost the network together do not all
/// come back in the same second.
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    const BASE_MS: u64 = 1_000;
    const CAP_MS: u64 = 300_000;
    let exp = BASE_MS.saturating_mul(1u64 << attempt.saturating_sub(1).min(20));
    let ceiling = exp.min(CAP_MS);
    let j = jitter.clamp(0.0, 1.0);
    let ms = ceiling / 2 + ((ceiling / 2) as f64 * j) as u64;
    Duration::from_millis(ms.max(1))
}

/// What the sync loop does after a sync attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Synced: come back after the regular interval (or earlier when nudged).
    Idle(Duration),
    /// Failed but worth retrying: after this delay, or earlier when nudged.
    Retry(Duration),
    /// Only the user signing in again can help; wait for a nudge.
    WaitForUser,
}

/// Regular sync interval when everything works.
pub const IDLE_INTERVAL: Duration = Duration::from_secs(60);

pub fn after_attempt(outcome: &Result<(), Failure>, attempt: u32, jitter: f64) -> Next {
    match outcome {
        Ok(()) => Next::Idle(IDLE_INTERVAL),
        Err(Failure::Unauthorized) => Next::WaitForUser,
        // Permanent failures are handled mutation by mutation (split, then set
        // aside); one reaching here is about the whole exchange (e.g. a pull
        // the server refuses), so retry slowly rather than never.
        Err(Failure::Transient(_))
        | Err(Failure::Permanent { .. })
        | Err(Failure::CursorAhead { .. }) => Next::Retry(backoff(attempt.max(1), jitter)),
    }
}

/// What to do when the server refuses a whole push request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushRefusal {
    /// The batch is too large (413): send this many of it next.
    Halve(usize),
    /// A single mutation is too large for the server: set it aside.
    SetAside,
    /// The request as a whole cannot be understood or is not allowed
    /// (400, 403, 404, 409, 422, ...): every mutation would meet the same
    /// answer, so the app and the server are incompatible. Keep the outbox,
    /// stop, and ask for an app update.
    Incompatible,
    /// Not a refusal of this request (401, 408, 425, 429, 5xx): retry later, unchanged.
    Retry,
}

/// After the server refused a whole push of `len` mutations with `status`.
/// Only a 413 says something about the size of this batch; splitting on any
/// other 4xx would move the whole outbox to "needs attention" one by one.
pub fn on_push_refusal(status: u16, len: usize) -> PushRefusal {
    match status {
        413 if len > 1 => PushRefusal::Halve(len / 2),
        413 => PushRefusal::SetAside,
        401 | 408 | 425 | 429 => PushRefusal::Retry,
        400..=499 => PushRefusal::Incompatible,
        // status 0: the request could not even be built (a bad server address).
        0 => PushRefusal::Incompatible,
        _ => PushRefusal::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: usize, bytes: usize) -> Vec<Pending> {
        (1..=n as u64).map(|id| Pending { id, bytes }).collect()
    }

    #[test]
    fn batches_never_exceed_the_protocol_limit() {
        assert_eq!(next_batch(&p(1234, 100), usize::MAX), MAX_BATCH_MUTATIONS);
        assert_eq!(next_batch(&p(3, 100), 500), 3);
        assert_eq!(next_batch(&p(10, 100), 1), 1);
        assert_eq!(next_batch(&[], 500), 0);
    }

    #[test]
    fn batches_stay_under_the_body_limit_but_always_send_one() {
        let big = MAX_BODY_BYTES;
        assert_eq!(next_batch(&p(5, big), 500), 1);
        assert_eq!(next_batch(&p(5, MAX_BODY_BYTES / 5), 500), 2);
    }

    #[test]
    fn statuses_are_told_apart() {
        assert_eq!(classify_status(200), StatusClass::Success);
        assert_eq!(classify_status(401), StatusClass::Unauthorized);
        for s in [408, 429, 500, 502, 503, 504] {
            assert_eq!(classify_status(s), StatusClass::Transient, "{s}");
        }
        for s in [400, 403, 404, 409, 413, 422] {
            assert_eq!(classify_status(s), StatusClass::Permanent, "{s}");
        }
    }

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_a_cap() {
        assert_eq!(backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(1, 1.0), Duration::from_millis(1000));
        assert_eq!(backoff(3, 0.0), Duration::from_millis(2000));
        assert_eq!(backoff(30, 0.999).as_secs(), 299);
        assert!(backoff(40, 0.0) >= Duration::from_secs(150));
    }

    #[test]
    fn unauthorized_waits_for_the_user_and_transient_retries() {
        assert_eq!(
            after_attempt(&Err(Failure::Unauthorized), 3, 0.5),
            Next::WaitForUser
        );
        assert!(matches!(
            after_attempt(&Err(Failure::Transient("x".into())), 2, 0.5),
            Next::Retry(_)
        ));
        assert_eq!(after_attempt(&Ok(()), 0, 0.5), Next::Idle(IDLE_INTERVAL));
    }

    #[test]
    fn only_a_413_halves_the_batch_down_to_one_mutation_set_aside() {
        assert_eq!(on_push_refusal(413, 500), PushRefusal::Halve(250));
        assert_eq!(on_push_refusal(413, 2), PushRefusal::Halve(1));
        assert_eq!(on_push_refusal(413, 1), PushRefusal::SetAside);
    }

    #[test]
    fn any_other_whole_request_4xx_means_incompatible_and_never_sets_aside() {
        for s in [400, 403, 404, 405, 409, 410, 415, 422] {
            for len in [1, 2, 500] {
                assert_eq!(
                    on_push_refusal(s, len),
                    PushRefusal::Incompatible,
                    "{s} {len}"
                );
            }
        }
    }

    #[test]
    fn unauthorized_timeouts_and_rate_limits_are_retried_not_refused() {
        for s in [401, 408, 425, 429, 500, 503] {
            assert_eq!(on_push_refusal(s, 10), PushRefusal::Retry, "{s}");
        }
    }
}
