//! The process's one wasmtime [`Engine`] and the ticker that drives its
//! epochs.

use std::hash::Hasher;
use std::num::NonZeroUsize;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig,
    WasmBacktraceDetails,
};

use crate::plugins::call::COLLECTED_BACKTRACE_FRAMES;
use crate::plugins::config::{MAX_TABLE_ELEMENTS, MAX_WASM_STACK_BYTES, RuntimeConfig};

/// Core instances one component may hold: a Rust `wasm32-wasip2` component
/// has its main module plus a few adapter shims.
const CORE_INSTANCES_PER_COMPONENT: u32 = 32;
/// Linear memories one component may hold (Rust components have one).
const MEMORIES_PER_COMPONENT: u32 = 2;
/// Tables one component may hold (the main module's and the shims').
const TABLES_PER_COMPONENT: u32 = 8;
/// Bytes at the start of each linear memory whose pages stay mapped when
/// the slot is freed, where the kernel can tell which pages a call touched
/// (Linux's `PAGEMAP_SCAN`, 6.7 and later): those pages are zeroed in place
/// instead of unmapped with `madvise` and faulted in again by the next
/// call. Only touched pages stay, at most this much per memory. Without
/// the scan, wasmtime would zero the whole range on every call, which
/// costs more than it saves, so it is then left off.
const MEMORY_KEEP_RESIDENT: usize = 2 << 20;
/// The same for tables.
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// Builds the engine: Cranelift, epoch interruption, and a pooling
/// allocator sized for `max_concurrent_calls` instances whose memories may
/// each grow to `max_memory_bytes`.
pub(crate) fn build_engine(config: &RuntimeConfig) -> wasmtime::Result<Engine> {
    let slots = config.max_concurrent_calls.max(1);
    let max_memory = usize::try_from(config.max_memory_bytes)
        .map_err(|_| wasmtime::format_err!("max_memory_bytes does not fit this machine"))?;

    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots * CORE_INSTANCES_PER_COMPONENT)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .total_memories(slots * MEMORIES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .total_tables(slots * TABLES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .total_stacks(slots)
        .table_elements(MAX_TABLE_ELEMENTS)
        .max_memory_size(max_memory);
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
            .table_keep_resident(TABLE_KEEP_RESIDENT);
    }

    let mut wasm = Config::new();
    wasm.strategy(wasmtime::Strategy::Cranelift)
        .cranelift_opt_level(OptLevel::Speed)
        .epoch_interruption(true)
        // The guard against deep recursion; the fiber's stack (wasmtime's
        // default 2 MiB) leaves room above it for host calls.
        .max_wasm_stack(MAX_WASM_STACK_BYTES)
        // A trap's outcome shows the guest's call stack by function name
        // (from the component's name section); DWARF line tables are never
        // parsed, whatever WASMTIME_BACKTRACE_DETAILS says.
        .wasm_backtrace_max_frames(NonZeroUsize::new(COLLECTED_BACKTRACE_FRAMES))
        .wasm_backtrace_details(WasmBacktraceDetails::Disable)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&wasm)
}

/// A short, stable fingerprint of everything that makes compiled code
/// loadable by this engine (wasmtime version, target, settings): the second
/// half of a cache key.
pub(crate) fn engine_fingerprint(engine: &Engine) -> String {
    /// Feeds `Hash` output into SHA-256, which unlike `DefaultHasher` is the
    /// same in every build of the host.
    struct Sha256Hasher(Sha256);
    impl Hasher for Sha256Hasher {
        fn finish(&self) -> u64 {
            unreachable!("only the digest is read")
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = Sha256Hasher(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    hex::encode(&hasher.0.finalize()[..8])
}

/// Advances the engine's epoch every tick on a thread of its own, so that a
/// busy guest yields and has its deadline checked. Stops when dropped.
pub(crate) struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: Engine, tick: Duration) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("rescind-epoch".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    engine.increment_epoch();
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        // Dropping the sender disconnects the channel, which ends the loop.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
