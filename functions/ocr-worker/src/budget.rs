//! How many bytes one worker instance holds at once: a budget each for the
//! documents being read and for the decoded pixels of images being prepared.

use tokio::sync::{Semaphore, SemaphorePermit};

/// Permits count KiB: a 50 MiB document takes 51,200 of them.
const UNIT: u64 = 1024;

/// A budget of bytes in flight: a batch of ten large documents is read and
/// sent a few at a time, within the function's memory, instead of all at once.
pub struct ByteBudget {
    permits: Semaphore,
    total: u32,
}

impl ByteBudget {
    pub fn new(bytes: u64) -> Self {
        let total = bytes.div_ceil(UNIT).clamp(1, u64::from(u32::MAX >> 4)) as u32;
        Self {
            permits: Semaphore::new(total as usize),
            total,
        }
    }

    /// Waits until `bytes` fit beside what is in flight; held until dropped. A
    /// document larger than the whole budget waits for all of it.
    pub async fn reserve(&self, bytes: u64) -> SemaphorePermit<'_> {
        let units = bytes.div_ceil(UNIT).clamp(1, u64::from(self.total)) as u32;
        self.permits
            .acquire_many(units)
            .await
            .expect("the budget's semaphore is never closed")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn reservations_wait_until_their_bytes_fit() {
        let budget = ByteBudget::new(100 * 1024);
        let first = budget.reserve(60 * 1024).await;
        let second =
            tokio::time::timeout(Duration::from_millis(50), budget.reserve(60 * 1024)).await;
        assert!(second.is_err(), "60 + 60 KiB do not fit in 100 KiB");
        let small = budget.reserve(40 * 1024).await;
        drop(first);
        let second = budget.reserve(60 * 1024).await;
        drop((small, second));
        // Larger than the whole budget: it waits for all of it, and does not deadlock.
        let huge = budget.reserve(1024 * 1024).await;
        drop(huge);
    }
}
