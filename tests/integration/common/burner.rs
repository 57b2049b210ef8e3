//! CPU burners for tests that must hold on a loaded machine: busy threads,
//! stopped and joined when the guard drops (also when the test panics).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// `n` threads spinning until dropped.
pub struct CpuBurners {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl CpuBurners {
    pub fn start(n: usize) -> CpuBurners {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|i| {
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name(format!("cpu-burner-{i}"))
                    .spawn(move || {
                        let mut x = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                        }
                    })
                    .expect("spawn a CPU burner")
            })
            .collect();
        CpuBurners { stop, threads }
    }
}

impl Drop for CpuBurners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
