//! The bed's network: one bridge per bed on the host (the controller side), one network namespace per
//! node joined to it by a veth pair, all in the bed's private subnet `10.213.<slot>.0/24`. No routes
//! lead anywhere else. Everything is named after the bed's slot, so a bed's leftovers can be found and
//! removed without any record of them.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::BedError;
use crate::exec::host;

/// Prefix of every network namespace of the bed in `slot`.
pub(crate) fn netns_prefix(slot: u16) -> String {
    format!("etcdrill-b{slot}-")
}

/// The network namespace of node `node` (a node name) in `slot`.
pub(crate) fn netns_name(slot: u16, node: &str) -> String {
    format!("{}{node}", netns_prefix(slot))
}

/// The bridge of `slot` (at most 9 characters).
pub(crate) fn bridge_name(slot: u16) -> String {
    format!("etdr{slot}br")
}

/// The host end of node `index`'s veth pair in `slot` (at most 10 characters).
pub(crate) fn veth_name(slot: u16, index: usize) -> String {
    format!("etdr{slot}n{index}")
}

/// The controller's (host's) address on the bed's bridge.
pub(crate) fn host_address(slot: u16) -> Ipv4Addr {
    Ipv4Addr::new(10, 213, slot_octet(slot), 1)
}

/// The address of node `index` (1-based).
pub(crate) fn node_address(slot: u16, index: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 213, slot_octet(slot), 10 + index as u8)
}

fn slot_octet(slot: u16) -> u8 {
    u8::try_from(slot).expect("slots fit in one address octet")
}

/// The slot a network namespace name belongs to, if it is a bed's.
pub(crate) fn slot_of_netns(name: &str) -> Option<u16> {
    let rest = name.strip_prefix("etcdrill-b")?;
    let (slot, _) = rest.split_once('-')?;
    slot.parse().ok()
}

/// The slot a link name belongs to, if it is a bed's bridge or veth.
pub(crate) fn slot_of_link(name: &str) -> Option<u16> {
    let rest = name.strip_prefix("etdr")?;
    let digits = rest.find(|c: char| !c.is_ascii_digit())?;
    let (slot, tail) = rest.split_at(digits);
    let ours = tail == "br"
        || tail
            .strip_prefix('n')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    ours.then(|| slot.parse().ok()).flatten()
}

/// Names of all network namespaces on the host.
pub(crate) fn list_netns() -> Result<Vec<String>, BedError> {
    Ok(host("ip", &["netns", "list"])?
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect())
}

/// Names of all links in the host's network namespace.
pub(crate) fn list_links() -> Result<Vec<String>, BedError> {
    Ok(host("ip", &["-o", "link", "show"])?
        .lines()
        .filter_map(|line| {
            let name = line.split(": ").nth(1)?;
            Some(name.split('@').next().unwrap_or(name).to_owned())
        })
        .collect())
}

/// Host PIDs of all processes in network namespace `netns`.
pub(crate) fn netns_pids(netns: &str) -> Result<Vec<u32>, BedError> {
    Ok(host("ip", &["netns", "pids", netns])?
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .collect())
}

/// Creates the bed's bridge with the controller's address on it.
pub(crate) fn create_bridge(slot: u16) -> Result<(), BedError> {
    let bridge = bridge_name(slot);
    host("ip", &["link", "add", &bridge, "type", "bridge"])?;
    host(
        "ip",
        &[
            "addr",
            "add",
            &format!("{}/24", host_address(slot)),
            "dev",
            &bridge,
        ],
    )?;
    host("ip", &["link", "set", &bridge, "up"])?;
    Ok(())
}

/// Creates node `index`'s network namespace, with `eth0` on the bridge and `lo` up.
pub(crate) fn create_node_network(slot: u16, index: usize, netns: &str) -> Result<(), BedError> {
    let veth = veth_name(slot, index);
    host("ip", &["netns", "add", netns])?;
    host(
        "ip",
        &[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", netns,
        ],
    )?;
    host(
        "ip",
        &["link", "set", &veth, "master", &bridge_name(slot), "up"],
    )?;
    let address = format!("{}/24", node_address(slot, index));
    host("ip", &["-n", netns, "addr", "add", &address, "dev", "eth0"])?;
    host("ip", &["-n", netns, "link", "set", "eth0", "up"])?;
    host("ip", &["-n", netns, "link", "set", "lo", "up"])?;
    Ok(())
}

/// Removes everything of `slot` from the host: deletes its links, kills every process in its network
/// namespaces (which ends the nodes' PID and mount namespaces), waits until they are gone, and deletes
/// the namespaces.
pub(crate) fn remove_slot(slot: u16) -> Result<(), BedError> {
    let prefix = netns_prefix(slot);
    let namespaces: Vec<String> = list_netns()?
        .into_iter()
        .filter(|name| name.starts_with(&prefix))
        .collect();
    // Deleting the host end of a veth pair deletes its peer in the node's namespace too.
    for link in list_links()? {
        if slot_of_link(&link) == Some(slot) {
            delete_link(&link)?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for netns in &namespaces {
        loop {
            let pids = netns_pids(netns)?;
            if pids.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                return Err(BedError::Timeout {
                    what: format!("the processes of {netns} to end"),
                    waited: Duration::from_secs(20),
                    last: format!("still running: {pids:?}"),
                });
            }
            for pid in pids {
                if let Ok(pid) = libc::pid_t::try_from(pid) {
                    // SAFETY: kill(2) has no memory-safety preconditions.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        host("ip", &["netns", "delete", netns])?;
    }
    Ok(())
}

/// Deletes a link; one that vanished meanwhile (its peer or namespace went first) is fine.
fn delete_link(link: &str) -> Result<(), BedError> {
    match host("ip", &["link", "delete", link]) {
        Err(_) if !list_links()?.iter().any(|l| l == link) => Ok(()),
        result => result.map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_map_back_to_their_slot() {
        for slot in [1, 12, 250] {
            assert!(bridge_name(slot).len() <= 15);
            assert!(veth_name(slot, 9).len() <= 15);
            assert_eq!(slot_of_link(&bridge_name(slot)), Some(slot));
            assert_eq!(slot_of_link(&veth_name(slot, 3)), Some(slot));
            assert_eq!(slot_of_netns(&netns_name(slot, "node2")), Some(slot));
        }
        for foreign in [
            "eth0", "etdr", "etdr1", "etdr1x", "etdr1n", "etdrxbr", "etdr3brx",
        ] {
            assert_eq!(slot_of_link(foreign), None, "{foreign}");
        }
        assert_eq!(slot_of_netns("etcdrill-bx-node1"), None);
        assert_eq!(slot_of_netns("cni-1234"), None);
        assert_eq!(node_address(7, 3), Ipv4Addr::new(10, 213, 7, 13));
    }
}
