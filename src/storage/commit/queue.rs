//! The group-commit queue: leader/follower batching of concurrent writers.
//!
//! Writers enqueue an item and wait. The writer at the front of the queue,
//! when no group is in flight, becomes the leader: it takes a group from
//! the front (at least its own item, then more while the group stays within
//! the byte bound), runs the group *without* holding the queue lock, stores
//! the followers' results and wakes everyone. The next front writer then
//! leads the next group. So groups run one at a time, in arrival order, and
//! every item is processed exactly once.
//!
//! A leader may *gather* before taking its group: when the last group
//! showed that several writers commit concurrently (its size plus the
//! writers queued when it finished), the leader waits — at most the
//! `gather` time its caller allows — until that many writers are queued.
//! Without it, two writers committing in a loop never share a sync: each
//! returns just after the other's group has started. With it they share
//! one, the way PostgreSQL's `commit_delay` and MySQL's
//! `binlog_group_commit_sync_delay` do, but only while concurrency is
//! seen, so a lone writer never waits.
//!
//! While concurrency is seen, waiting writers first *yield* instead of
//! sleeping: a follower relocks and rechecks between `yield_now` calls for
//! up to about one recent sync (twice the gather time; for groups that do
//! not sync, the queue's follower window), and a gathering
//! leader until its gather deadline, before falling back to the condition
//! variable. A sleeping writer needs a wake-up (tens of microseconds on a
//! VM) before it can return and commit again, which is a large part of a
//! sub-millisecond sync; a yielding one notices at once. This is RocksDB's
//! adaptive yield in its write thread (`enable_write_thread_adaptive_yield`,
//! `write_thread_max_yield_usec`); the loom model keeps plain waits.
//!
//! If a leader panics, the group's followers and every later writer get
//! [`LeaderPanicked`] instead of waiting forever.
//!
//! Only one group is in flight at a time, so the queue keeps one set of
//! group buffers (tickets, items, results) that each leader borrows and
//! returns: a group costs no allocation once the buffers have grown to the
//! largest group seen.
//!
//! The queue's locking is checked by a loom model test (`--cfg loom`).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::sync::{Condvar, Mutex, MutexGuard};

/// Whether waits yield before they sleep (not in the loom model, whose
/// exhaustive search needs waits it can see).
const YIELDING: bool = !cfg!(loom);

/// The leader of a group panicked; the queue accepts no more work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LeaderPanicked;

/// A leader/follower queue of items of type `T` with results of type `R`.
#[derive(Debug)]
pub(crate) struct GroupQueue<T, R> {
    state: Mutex<QueueState<T, R>>,
    wakeup: Condvar,
    group_bytes_max: usize,
    /// How long a follower yields before sleeping when its leader does not
    /// gather (see [`GroupQueue::with_follower_yield`]).
    follower_yield: Duration,
}

#[derive(Debug)]
struct QueueState<T, R> {
    waiting: VecDeque<Waiting<T>>,
    /// Results of followers that have not collected them yet.
    finished: HashMap<u64, R>,
    next_ticket: u64,
    /// A group is in flight (or its leader is gathering).
    leading: bool,
    /// A leader is gathering: enqueuing writers must wake it.
    gathering: bool,
    /// How many writers the last group showed to be committing together:
    /// its size plus the writers queued when it finished.
    concurrency: usize,
    /// A leader panicked.
    abandoned: bool,
    /// The group buffers, lent to the leader of the group in flight.
    spare: Option<GroupBuffers<T, R>>,
}

/// One group's tickets, items and results, reused from group to group.
#[derive(Debug)]
struct GroupBuffers<T, R> {
    tickets: Vec<u64>,
    items: Vec<T>,
    results: Vec<R>,
}

impl<T, R> Default for GroupBuffers<T, R> {
    fn default() -> Self {
        Self {
            tickets: Vec::new(),
            items: Vec::new(),
            results: Vec::new(),
        }
    }
}

#[derive(Debug)]
struct Waiting<T> {
    ticket: u64,
    item: T,
    bytes: usize,
}

/// Marks the queue abandoned if the leader unwinds before finishing.
struct LeaderGuard<'a, T, R> {
    queue: &'a GroupQueue<T, R>,
    armed: bool,
}

impl<T, R> Drop for LeaderGuard<'_, T, R> {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.queue.state.lock();
            state.abandoned = true;
            state.leading = false;
            drop(state);
            self.queue.wakeup.notify_all();
        }
    }
}

impl<T, R> GroupQueue<T, R> {
    /// A queue whose groups hold at most `group_bytes_max` bytes of items
    /// (a single larger item still forms a group of its own).
    pub(crate) fn new(group_bytes_max: usize) -> Self {
        Self {
            state: Mutex::new(QueueState {
                waiting: VecDeque::new(),
                finished: HashMap::new(),
                next_ticket: 0,
                leading: false,
                gathering: false,
                concurrency: 1,
                abandoned: false,
                spare: None,
            }),
            wakeup: Condvar::new(),
            group_bytes_max,
            follower_yield: Duration::ZERO,
        }
    }

    /// Lets a follower whose group does not gather (writes that need no
    /// sync) yield for up to `window` before it sleeps. Such a group takes a
    /// few microseconds (a `write(2)` and a memtable insert), far less than
    /// the wake-up a sleeping follower needs before it can take the lead.
    pub(crate) fn with_follower_yield(mut self, window: Duration) -> Self {
        self.follower_yield = window;
        self
    }

    /// Enqueues `item` (weighing `bytes`) and waits for its result. If this
    /// caller becomes the leader, it gathers for at most `gather` (zero: not
    /// at all), then `lead` runs its group: it receives the items in arrival
    /// order, takes them all out of the vector, and pushes one result per
    /// item, in the same order, onto the (empty) results vector.
    pub(crate) fn submit(
        &self,
        item: T,
        bytes: usize,
        gather: Duration,
        lead: impl FnOnce(&mut Vec<T>, &mut Vec<R>),
    ) -> Result<R, LeaderPanicked> {
        let mut state = self.state.lock();
        if state.abandoned {
            return Err(LeaderPanicked);
        }
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.waiting.push_back(Waiting {
            ticket,
            item,
            bytes,
        });
        if state.gathering {
            self.wakeup.notify_all();
        }
        // A lone writer leads at once and never reads the clock; with
        // others committing, a follower yields for about one sync (or the
        // follower window, for groups that do not sync) before sleeping.
        let window = if gather.is_zero() {
            self.follower_yield
        } else {
            2 * gather
        };
        let mut yield_until: Option<Instant> = None;
        loop {
            // Checking emptiness first spares a lone writer the hashing.
            if !state.finished.is_empty()
                && let Some(result) = state.finished.remove(&ticket)
            {
                return Ok(result);
            }
            if state.abandoned {
                return Err(LeaderPanicked);
            }
            let at_front = state.waiting.front().is_some_and(|w| w.ticket == ticket);
            if at_front && !state.leading {
                break;
            }
            let now = Instant::now();
            let until = *yield_until.get_or_insert(now + window);
            state = if YIELDING && now < until {
                self.relock_after_yield(state)
            } else {
                self.wakeup.wait(state)
            };
        }

        // This caller leads: gather, then take a group from the front,
        // which is its item.
        state.leading = true;
        if !gather.is_zero() && state.waiting.len() < state.concurrency {
            state.gathering = true;
            let deadline = Instant::now() + gather;
            while state.waiting.len() < state.concurrency {
                let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                    break;
                };
                if YIELDING {
                    state = self.relock_after_yield(state);
                    continue;
                }
                let (relocked, timed_out) = self.wakeup.wait_timeout(state, left);
                state = relocked;
                if timed_out {
                    break;
                }
            }
            state.gathering = false;
        }
        let mut buffers = state.spare.take().unwrap_or_default();
        self.take_group(&mut state.waiting, &mut buffers);
        drop(state);

        let mut guard = LeaderGuard {
            queue: self,
            armed: true,
        };
        let group_len = buffers.tickets.len();
        lead(&mut buffers.items, &mut buffers.results);
        assert!(
            buffers.items.is_empty() && buffers.results.len() == group_len,
            "a group leader must take every item and return one result per item: \
             {} items left, {} results for {group_len}",
            buffers.items.len(),
            buffers.results.len()
        );

        let mut own = None;
        let mut state = self.state.lock();
        for (t, result) in buffers.tickets.drain(..).zip(buffers.results.drain(..)) {
            if t == ticket {
                own = Some(result);
            } else {
                state.finished.insert(t, result);
            }
        }
        state.spare = Some(buffers);
        state.leading = false;
        state.concurrency = group_len + state.waiting.len();
        guard.armed = false;
        drop(state);
        self.wakeup.notify_all();
        // The leader's own item is the first of its group.
        own.ok_or(LeaderPanicked)
    }

    /// Unlocks, gives the CPU to any other runnable thread, and relocks:
    /// one step of a yielding wait (the caller rechecks its condition).
    fn relock_after_yield<'a>(
        &'a self,
        state: MutexGuard<'a, QueueState<T, R>>,
    ) -> MutexGuard<'a, QueueState<T, R>> {
        drop(state);
        std::thread::yield_now();
        self.state.lock()
    }

    /// How many writers wait (tests use it to force groups to form).
    #[cfg(test)]
    pub(crate) fn waiting_len(&self) -> usize {
        self.state.lock().waiting.len()
    }

    /// Moves the next group from the front of `waiting` into the (empty)
    /// buffers: its tickets and its items.
    fn take_group(&self, waiting: &mut VecDeque<Waiting<T>>, group: &mut GroupBuffers<T, R>) {
        let mut bytes = 0usize;
        while let Some(next) = waiting.front() {
            if !group.items.is_empty() && bytes.saturating_add(next.bytes) > self.group_bytes_max {
                break;
            }
            bytes = bytes.saturating_add(next.bytes);
            if let Some(next) = waiting.pop_front() {
                group.tickets.push(next.ticket);
                group.items.push(next.item);
            }
        }
    }
}

#[cfg(test)]
#[cfg(not(loom))]
mod tests {
    use std::sync::{Arc, Barrier};

    use super::*;

    /// Adapts a by-value leader (items in, results out) to the queue's
    /// buffer-lending interface.
    fn by_value<T, R>(
        lead: impl FnOnce(Vec<T>) -> Vec<R>,
    ) -> impl FnOnce(&mut Vec<T>, &mut Vec<R>) {
        move |items, results| results.extend(lead(std::mem::take(items)))
    }

    #[test]
    fn a_lone_writer_leads_its_own_group() {
        let queue = GroupQueue::new(100);
        let result = queue.submit(
            7u32,
            1,
            Duration::ZERO,
            by_value(|items| items.iter().map(|i| i * 2).collect()),
        );
        assert_eq!(result, Ok(14));
    }

    #[test]
    fn leaders_reuse_the_group_buffers() {
        let queue = GroupQueue::<u32, u32>::new(100);
        let mut capacities = Vec::new();
        for i in 0..3u32 {
            let result = queue.submit(i, 1, Duration::ZERO, |items, results| {
                // The results vector comes back empty but keeps the room
                // the previous group's result used.
                capacities.push(results.capacity());
                results.append(items);
            });
            assert_eq!(result, Ok(i));
        }
        assert_eq!(capacities[0], 0);
        assert!(capacities[1..].iter().all(|&c| c >= 1), "{capacities:?}");
    }

    #[test]
    fn a_lone_writer_never_gathers() {
        // Were it to wait for company, each submit would take the full hour.
        let queue = GroupQueue::new(100);
        for i in 0..100u32 {
            let result = queue.submit(i, 1, Duration::from_secs(3600), by_value(|items| items));
            assert_eq!(result, Ok(i));
        }
    }

    #[test]
    fn a_gathering_leader_takes_the_writers_the_last_group_showed() {
        let queue = Arc::new(GroupQueue::<u32, u32>::new(usize::MAX));
        let sizes = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let spawn = |item: u32, gather: Duration| {
            let (queue, sizes) = (Arc::clone(&queue), Arc::clone(&sizes));
            std::thread::spawn(move || {
                queue.submit(
                    item,
                    1,
                    gather,
                    by_value(|items| {
                        sizes.lock().push(items.clone());
                        items
                    }),
                )
            })
        };
        let wait_for_queued = |n: usize| {
            while queue.waiting_len() < n {
                std::thread::yield_now();
            }
        };
        // Writer 1 leads and holds the queue until 2 and 3 are queued; 2
        // then leads {2, 3}, which shows two writers committing together.
        let barrier = Arc::new(Barrier::new(2));
        let first = {
            let (queue, barrier) = (Arc::clone(&queue), Arc::clone(&barrier));
            std::thread::spawn(move || {
                queue.submit(
                    1,
                    1,
                    Duration::ZERO,
                    by_value(|items| {
                        barrier.wait();
                        while queue.waiting_len() < 2 {
                            std::thread::yield_now();
                        }
                        items
                    }),
                )
            })
        };
        barrier.wait();
        let second = spawn(2, Duration::ZERO);
        wait_for_queued(1);
        let third = spawn(3, Duration::ZERO);
        assert_eq!(first.join().unwrap(), Ok(1));
        assert_eq!(second.join().unwrap(), Ok(2));
        assert_eq!(third.join().unwrap(), Ok(3));
        // The next leader waits (up to an hour) for a second writer, which
        // arrives a moment later; both go in one group.
        let leader = spawn(4, Duration::from_secs(3600));
        wait_for_queued(1);
        let follower = spawn(5, Duration::ZERO);
        assert_eq!(leader.join().unwrap(), Ok(4));
        assert_eq!(follower.join().unwrap(), Ok(5));
        assert_eq!(*sizes.lock(), vec![vec![2, 3], vec![4, 5]]);
    }

    #[test]
    fn concurrent_writers_each_get_their_own_result() {
        let queue = Arc::new(GroupQueue::<u64, u64>::new(usize::MAX));
        let groups = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let queue = Arc::clone(&queue);
                let groups = Arc::clone(&groups);
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let item = t * 1000 + i;
                        let result = queue.submit(
                            item,
                            1,
                            Duration::ZERO,
                            by_value(|items| {
                                groups.lock().push(items.clone());
                                items.iter().map(|x| x + 1).collect()
                            }),
                        );
                        assert_eq!(result, Ok(item + 1));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let groups = groups.lock();
        let mut all: Vec<u64> = groups.iter().flatten().copied().collect();
        assert_eq!(all.len(), 1600);
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 1600, "an item was processed twice");
    }

    #[test]
    fn groups_respect_the_byte_bound_but_always_take_one_item() {
        let queue = Arc::new(GroupQueue::<usize, usize>::new(10));
        let barrier = Arc::new(Barrier::new(2));
        let sizes = Arc::new(parking_lot::Mutex::new(Vec::new()));
        // Hold the queue with a leader until the followers are queued.
        let blocker = {
            let (queue, barrier) = (Arc::clone(&queue), Arc::clone(&barrier));
            std::thread::spawn(move || {
                queue.submit(
                    0,
                    1,
                    Duration::ZERO,
                    by_value(|items| {
                        barrier.wait();
                        // Wait until the followers are queued behind the leader.
                        while queue.waiting_len() < 4 {
                            std::thread::yield_now();
                        }
                        items
                    }),
                )
            })
        };
        barrier.wait();
        let followers: Vec<_> = [6usize, 6, 25, 3]
            .into_iter()
            .map(|bytes| {
                let (queue, sizes) = (Arc::clone(&queue), Arc::clone(&sizes));
                std::thread::spawn(move || {
                    queue.submit(
                        bytes,
                        bytes,
                        Duration::ZERO,
                        by_value(|items| {
                            sizes.lock().push(items.iter().sum::<usize>());
                            items
                        }),
                    )
                })
            })
            .collect();
        assert_eq!(blocker.join().unwrap(), Ok(0));
        for follower in followers {
            assert!(follower.join().unwrap().is_ok());
        }
        for group_bytes in sizes.lock().iter() {
            assert!(*group_bytes <= 10 || *group_bytes == 25, "{group_bytes}");
        }
    }

    #[test]
    fn a_panicking_leader_releases_every_waiter() {
        let queue = Arc::new(GroupQueue::<u32, u32>::new(usize::MAX));
        let leader = {
            let queue = Arc::clone(&queue);
            std::thread::spawn(move || {
                queue.submit(
                    1,
                    1,
                    Duration::ZERO,
                    by_value(|_| -> Vec<u32> { panic!("apply failed") }),
                )
            })
        };
        assert!(leader.join().is_err());
        assert_eq!(
            queue.submit(2, 1, Duration::ZERO, by_value(|items| items)),
            Err(LeaderPanicked)
        );
    }
}

#[cfg(test)]
#[cfg(loom)]
mod loom_tests {
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Adapts a by-value leader (items in, results out) to the queue's
    /// buffer-lending interface.
    fn by_value<T, R>(
        lead: impl FnOnce(Vec<T>) -> Vec<R>,
    ) -> impl FnOnce(&mut Vec<T>, &mut Vec<R>) {
        move |items, results| results.extend(lead(std::mem::take(items)))
    }

    /// Three writers (two spawned, the model's main thread) race to commit:
    /// every interleaving must give each writer its own result, process each
    /// item once, and never run two groups at the same time.
    #[test]
    fn commit_queue_loom_every_writer_gets_its_result_and_groups_never_overlap() {
        loom::model(|| {
            let queue = Arc::new(GroupQueue::<usize, usize>::new(usize::MAX));
            let in_flight = Arc::new(AtomicUsize::new(0));
            let processed = Arc::new(Mutex::new(Vec::new()));
            let submit = |queue: &GroupQueue<usize, usize>,
                          in_flight: &AtomicUsize,
                          processed: &Mutex<Vec<usize>>,
                          item: usize| {
                queue.submit(
                    item,
                    1,
                    Duration::from_millis(1),
                    by_value(|items| {
                        assert_eq!(in_flight.fetch_add(1, Ordering::SeqCst), 0);
                        processed.lock().extend(items.iter().copied());
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        items.iter().map(|i| i * 10).collect()
                    }),
                )
            };
            let threads: Vec<_> = (1..=2)
                .map(|item| {
                    let (queue, in_flight, processed) = (
                        Arc::clone(&queue),
                        Arc::clone(&in_flight),
                        Arc::clone(&processed),
                    );
                    loom::thread::spawn(move || {
                        assert_eq!(submit(&queue, &in_flight, &processed, item), Ok(item * 10));
                    })
                })
                .collect();
            assert_eq!(submit(&queue, &in_flight, &processed, 3), Ok(30));
            for thread in threads {
                thread.join().unwrap();
            }
            let mut processed = processed.lock().clone();
            processed.sort_unstable();
            assert_eq!(processed, vec![1, 2, 3]);
        });
    }

    /// With a byte bound of one item per group, two writers still each get
    /// their result and the groups run in arrival order.
    #[test]
    fn commit_queue_loom_bounded_groups_run_in_arrival_order() {
        loom::model(|| {
            let queue = Arc::new(GroupQueue::<usize, usize>::new(1));
            let order = Arc::new(Mutex::new(Vec::new()));
            let spawned = {
                let (queue, order) = (Arc::clone(&queue), Arc::clone(&order));
                loom::thread::spawn(move || {
                    queue.submit(
                        1,
                        1,
                        Duration::ZERO,
                        by_value(|items| {
                            assert_eq!(items.len(), 1);
                            order.lock().extend(items.iter().copied());
                            items
                        }),
                    )
                })
            };
            let own = queue.submit(
                2,
                1,
                Duration::ZERO,
                by_value(|items| {
                    assert_eq!(items.len(), 1);
                    order.lock().extend(items.iter().copied());
                    items
                }),
            );
            assert_eq!(own, Ok(2));
            assert_eq!(spawned.join().unwrap(), Ok(1));
            assert_eq!(order.lock().len(), 2);
        });
    }
}
