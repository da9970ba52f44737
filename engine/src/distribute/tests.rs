//! Distributing to real `sh` writers through the local transport: one read for the instances
//! that start together, a node that cannot write fails alone, a corrupted source renames nothing.

use sha2::{Digest as _, Sha256};

use super::*;

/// A snapshot-shaped file of `pages` pages in `dir`.
fn snapshot_file(dir: &Path, pages: usize, corrupt: bool) -> PathBuf {
    let mut data: Vec<u8> = (0..pages * 512).map(|i| (i * 13 % 251) as u8).collect();
    let digest = Sha256::digest(&data);
    data.extend_from_slice(&digest);
    if corrupt {
        data[pages * 256] ^= 0x80;
    }
    let path = dir.join("snapshot.db");
    std::fs::write(&path, &data).unwrap();
    path
}

/// Distributes `from` to each of `targets` at once, as instances of one wave would.
async fn distribute_all(
    rounds: &Rounds,
    from: &Path,
    targets: &[(&str, PathBuf)],
) -> Vec<(Result<CallOutcome, Failure>, u64)> {
    let transport = Transport::local();
    let from = from.to_str().unwrap();
    let runs = targets.iter().map(|(node, to)| {
        let transport = &transport;
        async move {
            let to = to.to_str().unwrap();
            let writer = format!("run1.{node}");
            let at = Destination {
                transport,
                node,
                to,
                writer: &writer,
                sudo: false,
            };
            let meter = TransferMeter::default();
            let result = distribute(rounds, from, None, &at, Duration::from_secs(60), &meter).await;
            (result, meter.done())
        }
    });
    futures_util::future::join_all(runs).await
}

/// Files left in `dir` whose name ends in `.part`.
fn parts(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".part"))
        .collect()
}

#[tokio::test]
async fn instances_that_start_together_share_one_read_and_each_gets_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let source = snapshot_file(dir.path(), 3 * 1024 + 1, false);
    let bytes = std::fs::read(&source).unwrap();
    let targets: Vec<(&str, PathBuf)> = ["cp1", "cp2", "cp3"]
        .iter()
        .map(|n| (*n, dir.path().join(format!("backup-{n}/restore.db"))))
        .collect();
    let rounds = Rounds::default();
    let results = distribute_all(&rounds, &source, &targets).await;
    for ((node, to), (result, sent)) in targets.iter().zip(results) {
        let outcome = result.unwrap_or_else(|e| panic!("{node}: {e:?}"));
        assert!(
            outcome.summary.contains("one read for cp1, cp2, cp3"),
            "{node}: {}",
            outcome.summary
        );
        assert_eq!(std::fs::read(to).unwrap(), bytes, "{node}");
        assert_eq!(sent, bytes.len() as u64, "{node}: bytes counted");
        assert_eq!(outcome.outputs["size"], bytes.len().to_string());
        assert_eq!(
            outcome.outputs["sha256"],
            crate::humanize::hex(&bytes[bytes.len() - 32..])
        );
        assert!(parts(to.parent().unwrap()).is_empty(), "{node}");
    }
    // A later instance (a retry) reads the file again, by itself.
    let again = distribute_all(&rounds, &source, &targets[..1]).await;
    let outcome = again.into_iter().next().unwrap().0.unwrap();
    assert!(
        !outcome.summary.contains("one read for"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn a_node_that_cannot_write_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let source = snapshot_file(dir.path(), 2 * 1024, false);
    // A regular file where the node's directory should be: mkdir fails there, even as root.
    std::fs::write(dir.path().join("not-a-dir"), b"x").unwrap();
    let targets = [
        ("cp1", dir.path().join("cp1/restore.db")),
        ("cp2", dir.path().join("not-a-dir/restore.db")),
        ("cp3", dir.path().join("cp3/restore.db")),
    ];
    let results = distribute_all(&Rounds::default(), &source, &targets).await;
    let errors: Vec<Option<Failure>> = results.into_iter().map(|(r, _)| r.err()).collect();
    assert!(errors[0].is_none() && errors[2].is_none(), "{errors:?}");
    // The node's failure: another attempt may go better.
    let Some(Failure::Node(failed)) = &errors[1] else {
        panic!("{errors:?}")
    };
    assert!(
        failed.contains("stream to") && failed.contains("not-a-dir"),
        "{failed}"
    );
    for (_, to) in [&targets[0], &targets[2]] {
        assert_eq!(std::fs::read(to).unwrap(), std::fs::read(&source).unwrap());
    }
}

#[tokio::test]
async fn a_corrupted_source_is_renamed_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let source = snapshot_file(dir.path(), 1024, true);
    let targets = [
        ("cp1", dir.path().join("cp1/restore.db")),
        ("cp2", dir.path().join("cp2/restore.db")),
    ];
    let results = distribute_all(&Rounds::default(), &source, &targets).await;
    for ((node, to), (result, _)) in targets.iter().zip(results) {
        // The source's failure: no attempt would go better.
        let Err(Failure::Source(err)) = result else {
            panic!("{node}: {result:?}")
        };
        assert!(
            err.contains("on the controller: corrupt: the sha256 of the data is"),
            "{node}: {err}"
        );
        assert!(
            !to.exists(),
            "{node}: a corrupt copy was renamed into place"
        );
        assert!(parts(to.parent().unwrap()).is_empty(), "{node}: part left");
    }
}

#[tokio::test]
async fn a_missing_source_fails_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("cp1/restore.db");
    let results = distribute_all(
        &Rounds::default(),
        &dir.path().join("absent.db"),
        &[("cp1", to.clone())],
    )
    .await;
    let err = results.into_iter().next().unwrap().0.unwrap_err();
    assert!(
        matches!(&err, Failure::Source(reason) if reason.contains("cannot read the snapshot")),
        "{err:?}"
    );
    assert!(!to.parent().unwrap().exists());
}

#[test]
fn a_copy_that_hashes_differently_is_not_the_snapshot() {
    let read = Digest {
        size: 544,
        file_sha256: "a".repeat(64),
        sha256: "b".repeat(64),
    };
    let landed = |size, sha256: &str| Landed {
        size,
        sha256: sha256.to_owned(),
    };
    assert_eq!(
        same_bytes(&landed(544, &"a".repeat(64)), &read, "cp1"),
        Ok(())
    );
    let err = same_bytes(&landed(544, &"c".repeat(64)), &read, "cp2").unwrap_err();
    assert!(
        err.starts_with("the copy on cp2 is not the snapshot: 544 bytes hashing to ccc"),
        "{err}"
    );
    assert!(same_bytes(&landed(512, &"a".repeat(64)), &read, "cp3").is_err());
}
