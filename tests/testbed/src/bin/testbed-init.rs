//! PID 1 of a test bed node's PID namespace: reaps every orphan (sshd sessions, an external etcd
//! started by `etcd-service`, the kubelet stand-in) so that no zombie ever looks like a live process
//! to `pgrep`. The bed ends the node by killing this process, which makes the kernel kill the rest.

fn main() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) writes only to `status`, which lives across the call.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) {
            // No children right now; orphans may be re-parented to us later.
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }
}
