//! The load clients' own CPU clock (`loadtest`, `ws_load`), shared by `#[path]`.

use std::time::Duration;

/// Time this process's threads have spent on a CPU, from the first field of
/// each `/proc/self/task/*/schedstat` (nanoseconds); 0 where that is missing.
pub(crate) fn cpu_secs() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    let nanos: u64 = tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos).as_secs_f64()
}
