//! Bed slots: which beds exist on this machine, who owns them, and cleaning up after dead owners.
//!
//! Every bed owns a slot `N` (1 to [`SLOTS`]): the state directory `/run/etcdrill-testbed/bN`, the subnet
//! `10.213.N.0/24` and every namespace and link named after `N`. The owner holds an exclusive `flock` on
//! `bN/owner.lock` for the bed's lifetime; the kernel drops it when the owner dies, however it dies, so
//! a slot whose lock can be taken belongs to nobody and is cleaned. Claiming and sweeping happen under a
//! machine-wide lock, `/run/etcdrill-testbed/.lock`, so parallel test processes never race.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{BedError, network};

/// Root of all beds' state. Root-owned and 0755 all the way up, as sshd's StrictModes requires.
pub(crate) const STATE_ROOT: &str = "/run/etcdrill-testbed";
/// Number of slots, hence of beds that can run at once on one machine.
pub(crate) const SLOTS: u16 = 250;

/// A claimed slot. Dropping it releases the lock but leaves the state; see [`Slot::release`].
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) number: u16,
    pub(crate) dir: PathBuf,
    lock: File,
}

impl Slot {
    /// Claims the lowest free slot, after cleaning every slot whose owner is dead and every leftover
    /// namespace or link of a slot nobody owns.
    pub(crate) fn claim() -> Result<Slot, BedError> {
        let root = Path::new(STATE_ROOT);
        make_dir(root, 0o755)?;
        let _global = lock(&root.join(".lock"), true)?.expect("a blocking lock is always taken");
        let live = sweep(root)?;
        for number in 1..=SLOTS {
            if live.contains(&number) {
                continue;
            }
            let dir = slot_dir(number);
            match fs::DirBuilder::new().mode(0o755).create(&dir) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(BedError::io("create", &dir)(error)),
            }
            let lock = lock(&dir.join("owner.lock"), false)?.expect("a new lock file is free");
            let owner = format!(
                "pid={}\nexe={}\n",
                std::process::id(),
                std::env::current_exe().unwrap_or_default().display()
            );
            write_file(&dir.join("owner"), owner.as_bytes(), 0o644)?;
            return Ok(Slot { number, dir, lock });
        }
        Err(BedError::NoFreeSlot(SLOTS))
    }

    /// Removes the slot's state directory (its namespaces and links must be gone already) and frees it.
    pub(crate) fn release(self) -> Result<(), BedError> {
        let _global = lock(&Path::new(STATE_ROOT).join(".lock"), true)?;
        let result = fs::remove_dir_all(&self.dir).map_err(BedError::io("remove", &self.dir));
        drop(self.lock);
        result
    }
}

/// The state directory of slot `number`.
pub(crate) fn slot_dir(number: u16) -> PathBuf {
    Path::new(STATE_ROOT).join(format!("b{number}"))
}

/// Cleans dead slots and ownerless leftovers; returns the slots of live beds. Call with the global lock.
fn sweep(root: &Path) -> Result<BTreeSet<u16>, BedError> {
    let mut live = BTreeSet::new();
    let mut dead = BTreeSet::new();
    for entry in fs::read_dir(root).map_err(BedError::io("list", root))? {
        let entry = entry.map_err(BedError::io("list", root))?;
        let name = entry.file_name();
        let Some(number) = name
            .to_str()
            .and_then(|n| n.strip_prefix('b'))
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        // A missing lock file means the claimer died before creating it (claims hold the global lock).
        let lock_path = entry.path().join("owner.lock");
        if lock_path.exists() && lock(&lock_path, false)?.is_none() {
            live.insert(number);
        } else {
            dead.insert(number);
        }
    }
    for name in network::list_netns()? {
        dead.extend(network::slot_of_netns(&name).filter(|n| !live.contains(n)));
    }
    for name in network::list_links()? {
        dead.extend(network::slot_of_link(&name).filter(|n| !live.contains(n)));
    }
    for number in dead {
        eprintln!("etcdrill-testbed: cleaning leftovers of dead bed b{number}");
        network::remove_slot(number)?;
        let dir = slot_dir(number);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(BedError::io("remove", &dir))?;
        }
    }
    Ok(live)
}

/// Opens (creating) `path` and takes an exclusive flock on it, waiting for it when `block`.
/// `Ok(None)`: someone else holds it.
fn lock(path: &Path, block: bool) -> Result<Option<File>, BedError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(BedError::io("open", path))?;
    let operation = libc::LOCK_EX | if block { 0 } else { libc::LOCK_NB };
    loop {
        // SAFETY: flock(2) on a descriptor owned by `file`, which outlives the call.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(Some(file));
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(None),
            _ => return Err(BedError::io("lock", path)(error)),
        }
    }
}

/// Creates `dir` (and parents) with `mode`.
pub(crate) fn make_dir(dir: &Path, mode: u32) -> Result<(), BedError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(BedError::io("create", dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(BedError::io("chmod", dir))
}

/// Writes `contents` to `path` with `mode`.
pub(crate) fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), BedError> {
    let mut file = File::create(path).map_err(BedError::io("create", path))?;
    file.write_all(contents)
        .map_err(BedError::io("write", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(BedError::io("chmod", path))
}
