//! A host-wide lock around "pick a subnet + create its bridge". Two berth instances (or two
//! tests) opening at the same moment would otherwise both read the routing table before
//! either bridge exists and choose the same subnet. The lock is an `flock` on a file in
//! /run, so it works across processes and between threads of one process (each holder
//! opens its own file description).

use std::fs::{File, OpenOptions};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::{NetError, Result};

const LOCK_PATH: &str = "/run/berth-net.subnets.lock";

/// Held while choosing subnets and creating bridges; released on drop.
pub struct SubnetLock(#[allow(dead_code)] Flock<File>);

/// Take the lock, polling without blocking the async runtime (it is held for ~1 ms).
pub async fn subnet_lock() -> Result<SubnetLock> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK_PATH)
            .map_err(|e| NetError::io(format!("open {LOCK_PATH}"), e))?;
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(l) => return Ok(SubnetLock(l)),
            Err((_, Errno::EWOULDBLOCK)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(2)).await
            }
            Err((_, e)) => return Err(NetError::io(format!("lock {LOCK_PATH}"), e.into())),
        }
    }
}
