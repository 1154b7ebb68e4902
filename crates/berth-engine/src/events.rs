//! Docker-shaped events on a broadcast channel, plus a short history for `since`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::broadcast;

/// One event: `{"Type":"container","Action":"start","Actor":{"ID","Attributes"},"time"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// `container`, `image`, `volume`, `network`.
    pub kind: String,
    /// `create`, `start`, `die`, `destroy`, `pull`, `tag`, ...
    pub action: String,
    pub actor_id: String,
    pub attributes: BTreeMap<String, String>,
    pub time: DateTime<Utc>,
}

const HISTORY: usize = 256;

pub(crate) struct EventBus {
    tx: broadcast::Sender<Event>,
    history: Mutex<VecDeque<Event>>,
}

impl EventBus {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(1024);
        EventBus {
            tx,
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }

    pub fn publish(&self, event: Event) {
        {
            let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(event.clone());
        }
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    pub fn since(&self, since: DateTime<Utc>) -> Vec<Event> {
        let h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        h.iter().filter(|e| e.time >= since).cloned().collect()
    }
}

impl crate::Engine {
    /// Live events from now on.
    pub fn subscribe_events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Recent events at or after `since` (a short in-memory history).
    pub fn events_since(&self, since: DateTime<Utc>) -> Vec<Event> {
        self.inner.events.since(since)
    }

    pub(crate) fn emit(
        &self,
        kind: &str,
        action: &str,
        actor_id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        self.inner.events.publish(Event {
            kind: kind.to_string(),
            action: action.to_string(),
            actor_id: actor_id.to_string(),
            attributes,
            time: Utc::now(),
        });
    }
}
