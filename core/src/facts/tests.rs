use super::*;
use crate::source::SourceFile;

const INVENTORY: &str = "name: lab
defaults:
  etcd:
    management: {static_pod: {}}
nodes:
  - {name: cp1, address: 10.0.0.11}
  - name: cp2
    address: 10.0.0.12
    etcd: {data_dir: /var/lib/etcd}
";

fn facts(node: &str, host_data_dir: &str) -> NodeFacts {
    let address = if node == "cp1" {
        "10.0.0.11"
    } else {
        "10.0.0.12"
    };
    NodeFacts {
        node: node.into(),
        uid: Some(0),
        config_source: Some("manifest /etc/kubernetes/manifests/etcd.yaml".into()),
        config: EtcdConfig {
            data_dir: Some("/var/lib/etcd".into()),
            host_data_dir: Some(host_data_dir.into()),
            name: Some(node.into()),
            // The inventory's URL is one of those the node advertises.
            peer_url: Some(format!(
                "https://{node}.example:2380,https://{address}:2380"
            )),
            client_url: Some(format!("https://{address}:2379/")),
            ..EtcdConfig::default()
        },
        data_dir: None,
        backup_dir: None,
        etcdctl_version: None,
        etcdutl_version: None,
        process: None,
        process_looked_for: true,
        process_uses_data_dir: None,
        config_problem: None,
    }
}

fn cluster() -> Cluster {
    Cluster::load(SourceFile::new("inventory.yaml", INVENTORY)).unwrap()
}

#[test]
fn agreeing_facts_change_nothing() {
    let mut cluster = cluster();
    let before = cluster.nodes.clone();
    let filled = reconcile(
        &mut cluster,
        &[
            facts("cp1", "/var/lib/etcd"),
            facts("cp2", "/var/lib/etcd/"),
        ],
    )
    .unwrap();
    assert!(filled.is_empty(), "{filled:?}");
    assert_eq!(cluster.nodes, before);
}

#[test]
fn a_field_left_out_takes_the_node_value() {
    let mut cluster = cluster();
    let mut moved = facts("cp1", "/var/lib/etcd-restore-1");
    moved.config.peer_url = Some("https://10.0.1.11:2380,https://cp1.example:2380".into());
    let filled = reconcile(&mut cluster, &[moved, facts("cp2", "/var/lib/etcd")]).unwrap();
    assert_eq!(
        filled,
        [
            "cp1: data_dir = /var/lib/etcd-restore-1 (from manifest /etc/kubernetes/manifests/etcd.yaml)",
            "cp1: peer_url = https://10.0.1.11:2380 (from manifest /etc/kubernetes/manifests/etcd.yaml)"
        ]
    );
    assert_eq!(cluster.nodes[0].etcd.data_dir, "/var/lib/etcd-restore-1");
    assert_eq!(cluster.nodes[0].etcd.peer_url, "https://10.0.1.11:2380");
}

#[test]
fn a_stated_field_the_node_contradicts_refuses_at_its_place() {
    let mut cluster = cluster();
    let mut renamed = facts("cp2", "/var/lib/etcd-restore-1");
    renamed.config.name = Some("etcd-cp2".into());
    let error = reconcile(&mut cluster, &[facts("cp1", "/var/lib/etcd"), renamed]).unwrap_err();
    let text = error.to_string();
    insta::assert_snapshot!(text);
    // The member name was not stated: it would be filled, but the run is refused as a whole.
    assert!(!text.contains("`member`"), "{text}");
}

#[test]
fn a_missing_manifest_refuses_at_the_management_setting() {
    let mut cluster = cluster();
    let mut missing = facts("cp1", "/var/lib/etcd");
    missing.config_source = None;
    missing.config = EtcdConfig::default();
    let error = reconcile(&mut cluster, &[missing]).unwrap_err().to_string();
    assert!(
        error.contains("node `cp1` has no etcd manifest at /etc/kubernetes/manifests/etcd.yaml"),
        "{error}"
    );
    assert!(error.contains("inventory.yaml:4:17"), "{error}");
}

#[test]
fn facts_round_trip_through_json() {
    let mut node = facts("cp1", "/var/lib/etcd");
    node.data_dir = Some(DirFacts {
        path: "/var/lib/etcd".into(),
        exists: true,
        mount_point: true,
        filesystem: "ext4".into(),
        free_bytes: Some(1 << 30),
        member: Some("2049:17".into()),
    });
    let json = serde_json::to_string(&node).unwrap();
    assert_eq!(serde_json::from_str::<NodeFacts>(&json).unwrap(), node);
    assert!(summary(&[node]).contains("/var/lib/etcd (its own mount point, ext4, 1.0 GiB free)"));
}

#[test]
fn a_run_reopened_after_its_repoint_keeps_the_data_dir_it_started_with() {
    // cp2 states /var/lib/etcd; the run repointed both data volumes.
    let started = [facts("cp1", "/var/lib/etcd"), facts("cp2", "/var/lib/etcd")];
    let now = [
        facts("cp1", "/var/lib/etcd-restored-r1"),
        facts("cp2", "/var/lib/etcd-restored-r1"),
    ];
    let changes = changed_since(&started, &now);
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes[0].starts_with(
        "cp1: the data dir is /var/lib/etcd-restored-r1 now, /var/lib/etcd when the run started"
    ));
    // Reconciled with what the run started from: nothing refused, nothing moved.
    let mut cluster = Cluster::load(SourceFile::new("inv.yaml", INVENTORY)).unwrap();
    reconcile(&mut cluster, &started).unwrap();
    assert!(
        cluster
            .nodes
            .iter()
            .all(|n| n.etcd.data_dir == "/var/lib/etcd")
    );
    // Reconciled with what the nodes say now, the stated data dir would refuse the resume.
    let mut cluster = Cluster::load(SourceFile::new("inv.yaml", INVENTORY)).unwrap();
    assert!(reconcile(&mut cluster, &now).is_err());
    assert!(changed_since(&started, &started).is_empty());
}
