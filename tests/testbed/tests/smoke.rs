//! Smoke tests of the test bed itself: real etcd clusters over real SSH and mutual TLS, laid out like
//! kubeadm. They need root and skip cleanly without it (and fail on CI, where the bed is required).

use std::fs;
use std::time::{Duration, Instant};

use etcdrill_testbed::{
    Bed, BedConfig, EtcdVersion, Management, Node, SEED_PREFIX, require, seed_value, wait_until,
};

/// Starts a bed for `config`, or returns `None` (after `require` printed why) when the machine cannot.
fn start(config: BedConfig) -> Option<Bed> {
    if !require(&config) {
        return None;
    }
    let started = Instant::now();
    let bed = Bed::start(config).expect("bed starts");
    eprintln!("bed {} up and healthy in {:?}", bed.id(), started.elapsed());
    Some(bed)
}

/// Runs `remote` on `node` over SSH with the bed's strict options.
fn ssh(bed: &Bed, node: &Node, remote: &str) -> std::process::Output {
    bed.ssh_command(node, remote).output().expect("ssh runs")
}

/// The full smoke test of a 3-node static-pod bed for `version`.
fn three_static_pod_nodes(version: EtcdVersion) {
    let Some(bed) = start(BedConfig::new(3).version(version)) else {
        return;
    };
    let nodes = bed.nodes();

    // Three healthy members over mutual TLS, seen from the controller and from every node.
    let members = bed.member_list().expect("member list");
    let mut names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["node1", "node2", "node3"]);
    for member in &members {
        let node = nodes
            .iter()
            .find(|n| n.name() == member.name)
            .expect("member is a node");
        assert_eq!(member.client_urls, [node.client_url()]);
        assert_eq!(member.peer_urls, [node.peer_url()]);
    }
    for node in nodes {
        let health = node.etcdctl(&["endpoint", "health"]).expect("etcdctl runs");
        assert!(health.success(), "{}: {}", node.name(), health.stderr);
        let versions = node
            .exec_ok("etcd --version && etcdctl version")
            .expect("versions");
        for expected in ["etcd Version: ", "etcdctl version: "] {
            let expected = format!("{expected}{}.", version.as_str());
            assert!(versions.contains(&expected), "{versions}");
        }
        // The metrics URL is plain HTTP on the node's loopback.
        let (host, port) = node
            .metrics_url()
            .strip_prefix("http://")
            .and_then(|a| a.split_once(':'))
            .expect("url");
        let request = format!(
            "exec 3<>/dev/tcp/{host}/{port} && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"
        );
        let health = node
            .exec_ok(&format!(
                "bash -c {}",
                etcdrill_testbed::shell_quote(&request)
            ))
            .expect("metrics");
        assert!(health.contains(r#""health":"true""#), "{health}");
    }
    // A client without a certificate is refused: client certificate auth is on.
    let anonymous = bed
        .etcdctl(&["--cert=", "--key=", "--command-timeout=2s", "get", "/x"])
        .expect("etcdctl runs");
    assert!(
        !anonymous.success(),
        "a client without a certificate was served"
    );

    // SSH into each node with strict host key checking; each is its own host.
    for node in nodes {
        let out = ssh(
            &bed,
            node,
            "hostname; cat /etc/kubernetes/pki/etcd/ca.crt | head -1; pgrep -x etcd | wc -l",
        );
        assert!(
            out.status.success(),
            "ssh {}: {}",
            node.name(),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines,
            [node.name(), "-----BEGIN CERTIFICATE-----", "1"],
            "{}",
            node.name()
        );
    }
    // A known_hosts entry with the wrong key is refused.
    let known_hosts = fs::read_to_string(&bed.ssh().known_hosts).expect("known_hosts");
    let key_of = |node: &Node| {
        known_hosts
            .lines()
            .find(|l| l.starts_with(&format!("{} ", node.address())))
            .map(|l| l.split_once(' ').expect("host key").1.to_owned())
            .expect("node in known_hosts")
    };
    let wrong = tempfile::NamedTempFile::new().expect("temp file");
    fs::write(
        wrong.path(),
        format!("{} {}\n", nodes[0].address(), key_of(&nodes[1])),
    )
    .expect("write");
    let mut facts = bed.ssh().clone();
    facts.known_hosts = wrong.path().to_path_buf();
    let refused = facts
        .command(nodes[0].address(), "true")
        .output()
        .expect("ssh runs");
    assert_eq!(refused.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Host key verification failed"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Private mounts are private: a file under /etc/kubernetes, /var/lib/etcd or /tmp of node 1 is not on
    // node 2, nor on the host.
    let marker = format!("written-on-node1-{}", bed.id());
    nodes[0]
        .exec_ok(&format!("echo {marker} > /etc/kubernetes/marker && echo {marker} > /tmp/marker && echo {marker} > /var/backups/etcd/marker"))
        .expect("write on node 1");
    for path in [
        "/etc/kubernetes/marker",
        "/tmp/marker",
        "/var/backups/etcd/marker",
    ] {
        assert_eq!(
            nodes[0]
                .exec_ok(&format!("cat {path}"))
                .expect("read on node 1")
                .trim(),
            marker
        );
        let on_node2 = nodes[1]
            .exec(&format!("cat {path}"))
            .expect("exec on node 2");
        assert!(!on_node2.success(), "{path} of node 1 is visible on node 2");
        assert!(
            !std::path::Path::new(path).exists()
                || fs::read_to_string(path).unwrap_or_default().trim() != marker
        );
        assert_eq!(
            fs::read_to_string(nodes[0].host_path(path).expect("private path"))
                .expect("host copy")
                .trim(),
            marker
        );
    }
    // Programs in the node's private directories run (the bed's state may live on a noexec /run).
    let ran = nodes[0]
        .exec_ok("printf '#!/bin/sh\\necho ran\\n' > /tmp/prog && chmod +x /tmp/prog && /tmp/prog")
        .expect("run a program from /tmp");
    assert_eq!(ran.trim(), "ran");
    // Each node sees only its own etcd: its own PID namespace.
    for node in nodes {
        assert_eq!(node.etcd_pids().expect("pgrep").len(), 1, "{}", node.name());
    }

    // Static pods: moving the manifest out stops etcd (the process is gone), moving it back starts it.
    let canary = bed.put_canary("before-stop").expect("canary");
    let node = &nodes[2];
    let manifest = node.manifest_path().display().to_string();
    node.exec_ok(&format!("mv {manifest} /etc/kubernetes/etcd.yaml.moved"))
        .expect("move manifest out");
    wait_until(
        "etcd on node3 to stop",
        Duration::from_secs(40),
        || match node.etcd_pids().map_err(|e| e.to_string())? {
            pids if pids.is_empty() => Ok(()),
            pids => Err(format!("still running: {pids:?}")),
        },
    )
    .expect("kubelet stand-in stops etcd");
    let stopped = node
        .etcdctl(&[
            "endpoint",
            "health",
            "--dial-timeout=1s",
            "--command-timeout=1s",
        ])
        .expect("etcdctl runs");
    assert!(!stopped.success(), "node3's member still answers");
    // The other two members keep quorum.
    let during = bed
        .put_canary("while-node3-down")
        .expect("write with 2 of 3");
    node.exec_ok(&format!("mv /etc/kubernetes/etcd.yaml.moved {manifest}"))
        .expect("move manifest back");
    bed.wait_healthy(Duration::from_secs(40))
        .expect("node3 rejoins");
    for node in nodes {
        let local = node
            .etcdctl(&["get", &during.key, "--consistency=s", "--print-value-only"])
            .and_then(|o| o.into_stdout())
            .expect("serializable get");
        assert_eq!(local.trim(), during.value, "{}", node.name());
    }
    assert_eq!(
        bed.get(&canary.key).expect("get").as_deref(),
        Some(canary.value.as_str())
    );
    let kubelet_log = fs::read_to_string(node.kubelet_log()).expect("kubelet log");
    assert!(
        kubelet_log.contains("manifest removed") && kubelet_log.contains("manifest added"),
        "{kubelet_log}"
    );

    // A changed manifest restarts etcd with the new command.
    let old_pids = node.etcd_pids().expect("pgrep");
    node.exec_ok(&format!(
        "sed -i 's/--snapshot-count=10000/--snapshot-count=9999/' {manifest}"
    ))
    .expect("edit manifest");
    wait_until("etcd on node3 to restart", Duration::from_secs(40), || {
        let pids = node.etcd_pids().map_err(|e| e.to_string())?;
        let args = node
            .exec_ok("cat /proc/$(pgrep -x etcd)/cmdline | tr '\\0' ' '")
            .unwrap_or_default();
        if !pids.is_empty() && pids != old_pids && args.contains("--snapshot-count=9999") {
            Ok(())
        } else {
            Err(format!("pids {pids:?}, args {args}"))
        }
    })
    .expect("kubelet stand-in restarts etcd on change");
    bed.wait_healthy(Duration::from_secs(40))
        .expect("healthy after restart");

    // Teardown leaves nothing behind.
    let resources = bed.resources().expect("resources");
    assert!(resources.processes.len() >= 9, "{:?}", resources.processes);
    assert!(!resources.remaining().is_empty());
    let started = Instant::now();
    bed.teardown().expect("teardown");
    eprintln!("bed torn down in {:?}", started.elapsed());
    assert_eq!(resources.remaining(), Vec::<String>::new());
}

#[test]
fn three_nodes_etcd_3_5_static_pods() {
    three_static_pod_nodes(EtcdVersion::V3_5);
}

#[test]
fn three_nodes_etcd_3_4_static_pods() {
    three_static_pod_nodes(EtcdVersion::V3_4);
}

#[test]
fn five_nodes_external_etcd_stop_and_start() {
    let Some(bed) = start(BedConfig::new(5).management(Management::External)) else {
        return;
    };
    assert_eq!(bed.member_list().expect("member list").len(), 5);
    let node = &bed.nodes()[3];
    assert_eq!(
        node.status_command().as_deref(),
        Some("/usr/local/sbin/etcd-service status")
    );
    assert!(
        node.exec("test -f /etc/kubernetes/manifests/etcd.yaml")
            .expect("exec")
            .status
            .code()
            == Some(1)
    );
    let conf = node.exec_ok("cat /etc/etcd/etcd.conf").expect("env file");
    assert!(conf.contains("ETCD_NAME=node4"), "{conf}");

    // Stop through the exact command an inventory would name, over SSH.
    let stop = ssh(&bed, node, &node.stop_command().expect("external mode"));
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    assert!(node.etcd_pids().expect("pgrep").is_empty());
    assert_eq!(
        ssh(&bed, node, &node.status_command().expect("status"))
            .status
            .code(),
        Some(3)
    );
    let canary = bed.put_canary("four-of-five").expect("write with 4 of 5");

    let start = ssh(&bed, node, &node.start_command().expect("external mode"));
    assert!(
        start.status.success(),
        "{}",
        String::from_utf8_lossy(&start.stderr)
    );
    assert_eq!(
        ssh(&bed, node, &node.status_command().expect("status"))
            .status
            .code(),
        Some(0)
    );
    bed.wait_healthy(Duration::from_secs(40))
        .expect("node4 rejoins");
    let local = node
        .etcdctl(&["get", &canary.key, "--consistency=s", "--print-value-only"])
        .and_then(|o| o.into_stdout())
        .expect("serializable get on node4");
    assert_eq!(local.trim(), canary.value);

    // The bed's own stop/start go through the same script.
    bed.stop_member(&bed.nodes()[0]).expect("stop node1");
    bed.start_member(&bed.nodes()[0]).expect("start node1");
    bed.wait_healthy(Duration::from_secs(40))
        .expect("node1 rejoins");

    let resources = bed.resources().expect("resources");
    drop(bed);
    assert_eq!(resources.remaining(), Vec::<String>::new());
}

#[test]
fn one_node_seed_canary_quota_and_host_paths() {
    let Some(bed) = start(
        BedConfig::new(1)
            .quota_backend_bytes(64 << 20)
            .extra_flag("--auto-compaction-retention=0"),
    ) else {
        return;
    };
    let node = &bed.nodes()[0];
    let cmdline = node
        .exec_ok("cat /proc/$(pgrep -x etcd)/cmdline | tr '\\0' ' '")
        .expect("cmdline");
    assert!(
        cmdline.contains("--quota-backend-bytes=67108864"),
        "{cmdline}"
    );
    assert!(
        cmdline.contains("--auto-compaction-retention=0"),
        "{cmdline}"
    );

    bed.seed(300, 2048).expect("seed");
    assert_eq!(bed.count_keys(SEED_PREFIX).expect("count"), 300);
    let value = bed.get(&format!("{SEED_PREFIX}{:08}", 299)).expect("get");
    assert_eq!(value.as_deref(), Some(seed_value(299, 2048).as_str()));
    assert_eq!(bed.get("/no/such/key").expect("get"), None);

    // A snapshot saved on the node lands in the node's backup directory.
    let snapshot = format!("{}/smoke.db", node.backup_dir().display());
    node.etcdctl(&["snapshot", "save", &snapshot])
        .and_then(|o| o.into_stdout())
        .expect("snapshot save");
    let size = fs::metadata(node.host_path(&snapshot).expect("private"))
        .expect("snapshot on host")
        .len();
    assert!(
        size > 300 * 2048 && size % 512 == 32,
        "snapshot size {size}"
    );
    let status = node
        .exec_ok(&format!("etcdutl snapshot status {snapshot} -w json"))
        .expect("etcdutl snapshot status");
    assert!(status.contains("\"totalKey\""), "{status}");

    // The kubelet stand-in honours a hostPath that differs from its mount path, as kubeadm restores
    // use: etcd then runs on the data of the new host path.
    let before = bed.put_canary("before-copy").expect("canary");
    bed.stop_member(node).expect("stop");
    node.exec_ok("cp -a /var/lib/etcd /var/lib/etcd-copy && sed -i 's|^      path: /var/lib/etcd$|      path: /var/lib/etcd-copy|' /etc/kubernetes/etcd.yaml")
        .expect("point etcd-data at the copy");
    bed.start_member(node).expect("start on the copy");
    bed.wait_healthy(Duration::from_secs(30))
        .expect("healthy on the copy");
    assert_eq!(
        bed.get(&before.key).expect("get").as_deref(),
        Some(before.value.as_str())
    );
    let on_copy = bed.put_canary("on-copy").expect("canary");
    bed.stop_member(node).expect("stop");
    node.exec_ok("sed -i 's|^      path: /var/lib/etcd-copy$|      path: /var/lib/etcd|' /etc/kubernetes/etcd.yaml")
        .expect("point etcd-data back");
    bed.start_member(node).expect("start on the original");
    bed.wait_healthy(Duration::from_secs(30))
        .expect("healthy on the original");
    assert_eq!(
        bed.get(&on_copy.key).expect("get"),
        None,
        "the write on the copy is in the original"
    );
    assert_eq!(
        bed.get(&before.key).expect("get").as_deref(),
        Some(before.value.as_str())
    );

    let resources = bed.resources().expect("resources");
    drop(bed);
    assert_eq!(resources.remaining(), Vec::<String>::new());
}

#[test]
fn a_panicking_test_leaves_nothing_behind() {
    let config = BedConfig::new(1);
    if !require(&config) {
        return;
    }
    let resources = std::sync::Mutex::new(None);
    let outcome = std::panic::catch_unwind(|| {
        let bed = Bed::start(config).expect("bed starts");
        *resources.lock().expect("lock") = Some(bed.resources().expect("resources"));
        panic!("the test fails while its bed runs");
    });
    assert!(outcome.is_err());
    let resources = resources.into_inner().expect("lock").expect("bed started");
    assert!(
        resources
            .processes
            .iter()
            .any(|(_, _, name)| name == "etcd"),
        "{:?}",
        resources.processes
    );
    assert_eq!(resources.remaining(), Vec::<String>::new());
}
