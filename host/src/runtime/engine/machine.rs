//! What the machine allows a node: its memory, and how many memory mappings one OS process may
//! have (`vm.max_map_count`), which caps how many processes can be alive at once.
//!
//! Mappings, counted in `/proc/self/maps` (`bench/run live` prints the second figure): a pool
//! slot costs two when the node starts (its fiber stack and the stack's guard page), and a
//! live process four more (its linear memory and table carved out of their reservations).
//! Components with more memories or tables take a little more.

use super::config::ConfigError;

/// Mappings per pool slot, taken when the engine is built.
pub const MAPPINGS_PER_SLOT: u64 = 2;
/// Mappings per live process, on top of its slot's.
pub const MAPPINGS_PER_PROCESS: u64 = 4;
/// Room for everything else the host maps while it runs (threads, libraries, buffers).
const HEADROOM: u64 = 2_000;

/// The machine's memory, from `/proc/meminfo` (`None` where there is none).
pub fn memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// How many mappings this OS process may have, and how many it has now (`None` where the
/// machine does not say).
pub fn mappings() -> Option<(u64, u64)> {
    let allowed = std::fs::read_to_string("/proc/sys/vm/max_map_count").ok()?;
    let in_use = std::fs::read_to_string("/proc/self/maps").ok()?;
    Some((allowed.trim().parse().ok()?, in_use.lines().count() as u64))
}

/// The mappings a pool of `max_processes`, all of them live, needs when `in_use` are taken.
pub fn mappings_needed(max_processes: u32, in_use: u64) -> u64 {
    in_use + HEADROOM + (MAPPINGS_PER_SLOT + MAPPINGS_PER_PROCESS) * u64::from(max_processes)
}

/// How many live processes fit in `allowed` mappings when `in_use` are taken.
pub fn processes_that_fit(allowed: u64, in_use: u64) -> u64 {
    allowed.saturating_sub(in_use + HEADROOM) / (MAPPINGS_PER_SLOT + MAPPINGS_PER_PROCESS)
}

/// Whether `max_processes` live processes fit in `allowed` mappings when `in_use` are taken;
/// if not, an error that says what to raise, or how many processes would fit.
pub fn check_mappings(max_processes: u32, allowed: u64, in_use: u64) -> Result<(), ConfigError> {
    let needed = mappings_needed(max_processes, in_use);
    if needed <= allowed {
        return Ok(());
    }
    let fit = processes_that_fit(allowed, in_use);
    // A round figure above the need, as one would type it.
    let raise = needed.div_ceil(65_536) * 65_536;
    Err(ConfigError {
        setting: "max_processes",
        message: format!(
            "{max_processes} live processes need about {needed} memory mappings, but this \
             machine allows {allowed} per process (vm.max_map_count)\n  hint: raise it with \
             `sudo sysctl -w vm.max_map_count={raise}` (and a file in /etc/sysctl.d/ to keep it \
             after a reboot), or set max_processes to {fit} or less"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_pool_fits_a_stock_linux() {
        assert_eq!(check_mappings(10_000, 65_530, 500), Ok(()));
    }

    #[test]
    fn a_pool_the_machine_cannot_map_says_what_to_raise() {
        let err = check_mappings(100_000, 65_530, 500).expect_err("600 000 > 65 530");
        assert_eq!(err.setting, "max_processes");
        assert_eq!(
            err.message,
            "100000 live processes need about 602500 memory mappings, but this machine allows \
             65530 per process (vm.max_map_count)\n  hint: raise it with `sudo sysctl -w \
             vm.max_map_count=655360` (and a file in /etc/sysctl.d/ to keep it after a reboot), \
             or set max_processes to 10505 or less"
        );
        assert_eq!(check_mappings(10_505, 65_530, 500), Ok(()));
        assert!(check_mappings(10_506, 65_530, 500).is_err());
    }
}
