//! The ACD queue as a plain data structure with its rules: customers waiting in arrival order,
//! their campaigns' priorities, preview reservations (a customer placed for one agent), and
//! the offers ringing for each customer (per-call agent legs; several with ring-all). Sans-IO
//! and clock-free: the engine asks it who is next and tells it what happened; it never sends
//! anything itself. Unit-tested here; the engine's ACD flow (`engine/acd_flow.rs`) drives it.

use std::collections::{HashMap, HashSet};

/// See the module documentation. Customers and agent legs are named by their Call-IDs;
/// agents by their index in the agent pool.
#[derive(Debug, Default)]
pub struct Queue {
    /// Customers waiting, in arrival order.
    waiting: Vec<String>,
    /// Customer → agent legs ringing for it.
    offers: HashMap<String, Vec<String>>,
    /// Preview calls: customer → the agent it was placed for (reserved until connected).
    previews: HashMap<String, usize>,
    /// Reservations in `previews` that are only a preference: dropped when the offer to that
    /// agent fails, so any agent may take the customer then.
    soft: HashSet<String>,
    /// Customer → its campaign's priority (absent: 0). Higher is connected first; equal ones
    /// in arrival order.
    priorities: HashMap<String, i32>,
}

impl Queue {
    /// Sets `customer`'s priority (before its call starts; campaigns sharing the agents).
    pub fn set_priority(&mut self, customer: &str, priority: i32) {
        self.priorities.insert(customer.to_string(), priority);
    }

    /// `customer` was placed for `agent` (preview dialling): it goes to that agent only.
    pub fn reserve_for(&mut self, customer: &str, agent: usize) {
        self.previews.insert(customer.to_string(), agent);
    }

    /// `customer` goes to `agent` first (its offer is made before any other), but only once:
    /// if that offer fails the customer waits for any agent.
    pub fn prefer(&mut self, customer: &str, agent: usize) {
        self.previews.insert(customer.to_string(), agent);
        self.soft.insert(customer.to_string());
    }

    /// `customer` starts waiting; returns its 1-based position.
    pub fn enqueue(&mut self, customer: &str) -> u32 {
        self.waiting.push(customer.to_string());
        self.waiting.len() as u32
    }

    /// True while `customer` waits.
    pub fn is_waiting(&self, customer: &str) -> bool {
        self.waiting.iter().any(|c| c == customer)
    }

    /// The waiting customers in arrival order.
    pub fn waiting(&self) -> &[String] {
        &self.waiting
    }

    /// Waiting preview calls with no offer ringing yet, and the agent each is for.
    pub fn previews_due(&self) -> Vec<(String, usize)> {
        self.waiting
            .iter()
            .filter(|c| !self.offers.contains_key(*c))
            .filter_map(|c| self.previews.get(c).map(|i| (c.clone(), *i)))
            .collect()
    }

    /// The next customer to offer to any agent: of the waiting ones that are not preview calls
    /// and (unless `ring_all`, where every available agent rings for the head) have no offer
    /// ringing, the highest priority, the earliest among equals.
    pub fn next(&self, ring_all: bool) -> Option<&String> {
        self.waiting
            .iter()
            .filter(|c| {
                !self.previews.contains_key(*c) && (ring_all || !self.offers.contains_key(*c))
            })
            .rev()
            .max_by_key(|c| self.priorities.get(*c).copied().unwrap_or(0))
    }

    /// An offer (agent leg `leg`) now rings for `customer`.
    pub fn offered(&mut self, customer: &str, leg: &str) {
        self.offers
            .entry(customer.to_string())
            .or_default()
            .push(leg.to_string());
    }

    /// True when agent leg `leg` is an offer ringing for `customer`.
    pub fn is_offer(&self, customer: &str, leg: &str) -> bool {
        self.offers
            .get(customer)
            .is_some_and(|v| v.iter().any(|l| l == leg))
    }

    /// The offer `leg` for `customer` failed (no answer, busy, …): it no longer rings.
    pub fn offer_failed(&mut self, customer: &str, leg: &str) {
        if let Some(v) = self.offers.get_mut(customer) {
            v.retain(|l| l != leg);
            if v.is_empty() {
                self.offers.remove(customer);
            }
        }
        if self.soft.remove(customer) {
            self.previews.remove(customer);
        }
    }

    /// `customer` is bridged on agent leg `leg`: it stops waiting; returns the other offers
    /// still ringing for it (to withdraw).
    pub fn connected(&mut self, customer: &str, leg: &str) -> Vec<String> {
        self.waiting.retain(|c| c != customer);
        self.previews.remove(customer);
        self.soft.remove(customer);
        self.offers
            .remove(customer)
            .unwrap_or_default()
            .into_iter()
            .filter(|l| l != leg)
            .collect()
    }

    /// `customer` gave up waiting (hung up, or `max_wait`): `None` if it was not waiting,
    /// else the offers ringing for it (to withdraw).
    pub fn abandoned(&mut self, customer: &str) -> Option<Vec<String>> {
        if !self.is_waiting(customer) {
            return None;
        }
        self.waiting.retain(|c| c != customer);
        Some(self.offers.remove(customer).unwrap_or_default())
    }

    /// `customer`'s call ended: its priority is forgotten; if it was a preview call with no
    /// offer ringing, returns the agent reserved for it (free again).
    pub fn ended(&mut self, customer: &str) -> Option<usize> {
        self.priorities.remove(customer);
        self.soft.remove(customer);
        let agent = self.previews.remove(customer)?;
        (!self.offers.contains_key(customer)).then_some(agent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(customers: &[(&str, i32)]) -> Queue {
        let mut q = Queue::default();
        for (c, p) in customers {
            q.set_priority(c, *p);
            q.enqueue(c);
        }
        q
    }

    #[test]
    fn higher_priority_campaigns_are_served_first_then_arrival_order() {
        let q = queue(&[("a1", 1), ("b1", 5), ("a2", 1), ("b2", 5), ("c1", 9)]);
        assert_eq!(q.next(false).unwrap(), "c1");
        let q = queue(&[("a1", 1), ("b1", 5), ("a2", 1), ("b2", 5)]);
        assert_eq!(q.next(false).unwrap(), "b1");
        let q = queue(&[("a1", 0), ("a2", 0)]);
        assert_eq!(q.next(false).unwrap(), "a1");
        assert_eq!(Queue::default().next(false), None);
    }

    #[test]
    fn one_offer_per_customer_unless_ring_all() {
        let mut q = queue(&[("c1", 0), ("c2", 0)]);
        q.offered("c1", "leg-a");
        assert_eq!(q.next(false).unwrap(), "c2");
        assert_eq!(
            q.next(true).unwrap(),
            "c1",
            "ring-all: more agents ring for the head"
        );
        assert!(q.is_offer("c1", "leg-a"));
        q.offered("c1", "leg-b");
        // Connected on leg-b: leg-a is to be withdrawn; c1 waits no more.
        assert_eq!(q.connected("c1", "leg-b"), ["leg-a"]);
        assert!(!q.is_waiting("c1"));
        assert_eq!(q.next(false).unwrap(), "c2");
    }

    #[test]
    fn a_failed_offer_puts_the_customer_back_in_line() {
        let mut q = queue(&[("c1", 0)]);
        q.offered("c1", "leg-a");
        assert_eq!(q.next(false), None);
        q.offer_failed("c1", "leg-a");
        assert_eq!(q.next(false).unwrap(), "c1");
    }

    #[test]
    fn preview_calls_go_only_to_their_agent() {
        let mut q = Queue::default();
        q.reserve_for("p1", 3);
        q.enqueue("p1");
        q.enqueue("c1");
        assert_eq!(q.next(false).unwrap(), "c1", "not offered to just anyone");
        assert_eq!(q.previews_due(), [("p1".to_string(), 3)]);
        q.offered("p1", "leg-x");
        assert!(q.previews_due().is_empty());
        // Ended while its offer rings: the leg's end frees the agent, not this.
        assert_eq!(q.ended("p1"), None);
        let mut q = Queue::default();
        q.reserve_for("p2", 4);
        assert_eq!(
            q.ended("p2"),
            Some(4),
            "never connected: its agent is free again"
        );
    }

    #[test]
    fn abandoning_returns_the_offers_to_withdraw_once() {
        let mut q = queue(&[("c1", 0)]);
        q.offered("c1", "leg-a");
        assert_eq!(q.abandoned("c1"), Some(vec!["leg-a".to_string()]));
        assert_eq!(q.abandoned("c1"), None);
        assert!(q.waiting().is_empty());
    }
}
