//! MONITOR's hub (protocol.md §8.16): connections publish the commands
//! they run while anyone monitors; each monitoring connection receives
//! them from a bounded broadcast ring.
//!
//! Nobody monitoring costs a connection one atomic load per batch
//! ([`Monitors::watching`]). While someone does, each command is copied
//! (key and value cut to [`MONITOR_ARG_BYTES`]) and sent under the ring's
//! lock. The ring exists only while a monitor does, so its memory goes
//! with the last monitor.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::broadcast;

use burrow_proto::{FrameRef, MonitorEvent, MONITOR_ARG_BYTES};

/// Events a monitor may fall behind before it is cut off.
pub(crate) const MONITOR_BACKLOG: usize = 4096;

type Sender = broadcast::Sender<Arc<MonitorEvent>>;

#[derive(Debug, Default)]
pub(crate) struct Monitors {
    /// Monitoring connections.
    active: AtomicUsize,
    ring: Mutex<Option<Sender>>,
}

/// A monitor's subscription; dropping it ends the monitor.
#[derive(Debug)]
pub(crate) struct Watch<'a> {
    monitors: &'a Monitors,
    pub events: broadcast::Receiver<Arc<MonitorEvent>>,
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        let mut ring = self.monitors.ring.lock().unwrap_or_else(|e| e.into_inner());
        if self.monitors.active.fetch_sub(1, Relaxed) == 1 {
            *ring = None;
        }
    }
}

impl Monitors {
    /// Whether anyone monitors: read once per batch.
    #[inline]
    pub(crate) fn watching(&self) -> bool {
        self.active.load(Relaxed) != 0
    }

    pub(crate) fn watch(&self) -> Watch<'_> {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let events = ring.get_or_insert_with(|| broadcast::channel(MONITOR_BACKLOG).0).subscribe();
        self.active.fetch_add(1, Relaxed);
        Watch { monitors: self, events }
    }

    /// Publishes one command `client` runs. Out of line: the hot loop
    /// only tests a flag.
    #[cold]
    #[inline(never)]
    pub(crate) fn publish(&self, frame: &FrameRef<'_>, client: &str) {
        let cut = |b: &[u8]| Bytes::copy_from_slice(&b[..b.len().min(MONITOR_ARG_BYTES)]);
        let event = MonitorEvent {
            unix_us: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64),
            opcode: frame.opcode,
            client: client.to_owned(),
            key_len: frame.key.len() as u32,
            key: cut(frame.key),
            value_len: frame.value.len() as u32,
            value: cut(frame.value),
            extras: cut(frame.extras),
        };
        if let Some(tx) = self.ring.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = tx.send(Arc::new(event));
        }
    }
}
