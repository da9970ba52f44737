//! Copying files to and from a node ([`Transport::push`], [`Transport::pull`]): streamed through
//! `sh` on the other side into `PATH.WRITER.part`, checked for size, fsync'd and renamed.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::capture::{Capture, pump};
use super::supervise::{GroupId, KillOnDrop, prologue, supervise};
use super::{CommandRequest, Proc, Transport, TransportError, with_sudo};
use crate::render::shell_quote;
use crate::transfer::{Metered, TransferMeter};

/// How long push and pull wait between `SIGTERM` and `SIGKILL` after their timeout.
const COPY_GRACE: Duration = Duration::from_secs(3);

/// A command's standard input, as [`Transport::fed`] hands it to the feeder.
type Stdin<'t> = Pin<Box<dyn AsyncWrite + Send + 't>>;

/// What landed on a node: the size and the sha256 the node computed while writing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Landed {
    /// Bytes written.
    pub size: u64,
    /// Hex sha256 of what was written, as the node computed it.
    pub sha256: String,
}
impl Transport {
    /// Streams a local file to `remote` (written to `remote.WRITER.part`, fsync'd, renamed),
    /// creating parent dirs, counting the bytes sent on `meter`; returns bytes copied. `writer`
    /// names this copy (the run and the node), so that nodes sharing a directory (one NFS backup
    /// dir) never write the same temporary file.
    pub async fn push(
        &self,
        local: &Path,
        remote: &str,
        writer: &str,
        sudo: bool,
        timeout: Duration,
        meter: &TransferMeter,
    ) -> Result<u64, TransportError> {
        let file = tokio::fs::File::open(local)
            .await
            .map_err(TransportError::io(format!("open {}", local.display())))?;
        let expected = file
            .metadata()
            .await
            .map_err(TransportError::io(format!("stat {}", local.display())))?
            .len();
        meter.set_total(expected);
        let what = format!("push {} to {remote}", local.display());
        let script = push_script(remote, writer, expected);
        let (sent, reply) = self
            .fed(&script, &what, sudo, timeout, |mut stdin| async move {
                let mut reader = BufReader::with_capacity(256 * 1024, Metered::new(file, meter));
                let sent = tokio::io::copy_buf(&mut reader, &mut stdin).await;
                let _ = stdin.shutdown().await;
                sent
            })
            .await?;
        let sent = sent.map_err(TransportError::io(format!("stream {}", local.display())))?;
        if sent != expected {
            return Err(TransportError::Io {
                what: format!("{what}: the file changed size while it was read"),
                source: std::io::Error::other(format!("expected {expected} bytes, read {sent}")),
            });
        }
        let landed = String::from_utf8_lossy(&reply).trim().parse::<u64>().ok();
        if landed != Some(expected) {
            return Err(self.remote(format!(
                "{what}: the remote side reports {} bytes, {expected} were sent",
                String::from_utf8_lossy(&reply).trim()
            )));
        }
        Ok(sent)
    }

    /// Writes what arrives on `chunks` (`expected` bytes in all, when known) to
    /// `remote.WRITER.part` on the node, hashing it (sha256) as it is written, and fsyncs it, counting the bytes sent on
    /// `meter`. The part file stays until [`Transport::settle_part`] renames or removes it; a
    /// failed or short write (the controller gone mid-stream) removes it. Dropping `chunks` early
    /// (a failed write) tells the sender this node takes no more.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn receive(
        &self,
        mut chunks: mpsc::Receiver<Arc<Vec<u8>>>,
        expected: Option<u64>,
        remote: &str,
        writer: &str,
        sudo: bool,
        timeout: Duration,
        meter: &TransferMeter,
    ) -> Result<Landed, TransportError> {
        let what = format!("stream to {remote}");
        let (sent, reply) = self
            .fed(
                &receive_script(remote, writer, expected),
                &what,
                sudo,
                timeout,
                |mut stdin| async move {
                    let mut sent = 0u64;
                    while let Some(chunk) = chunks.recv().await {
                        stdin.write_all(&chunk).await?;
                        meter.add(chunk.len() as u64);
                        sent += chunk.len() as u64;
                    }
                    drop(chunks);
                    stdin.shutdown().await?;
                    Ok::<_, std::io::Error>(sent)
                },
            )
            .await?;
        let sent = sent.map_err(TransportError::io(what.clone()))?;
        let reply = String::from_utf8_lossy(&reply);
        let landed = reply.lines().find_map(|line| {
            let mut fields = line.strip_prefix("etcdrill-received ")?.split(' ');
            let size = fields.next()?.trim().parse().ok()?;
            let sha256 = fields.next().filter(|h| h.len() == 64)?.to_owned();
            Some(Landed { size, sha256 })
        });
        match landed {
            Some(landed) if landed.size == sent => Ok(landed),
            _ => Err(self.remote(format!(
                "{what}: {sent} bytes were sent, the node reports `{}`",
                reply.trim()
            ))),
        }
    }

    /// Renames `remote.WRITER.part` to `remote` and fsyncs the directory (`keep`), or removes it.
    pub(crate) async fn settle_part(
        &self,
        remote: &str,
        writer: &str,
        keep: bool,
        sudo: bool,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        let part = shell_quote(&part_name(remote, writer));
        let script = if keep {
            format!(
                "set -e\nf={}\nmv -f -- {part} \"$f\"\nsync -- \"$(dirname -- \"$f\")\" 2>/dev/null || :\n",
                shell_quote(remote)
            )
        } else {
            format!("rm -f -- {part}\n")
        };
        let request = CommandRequest {
            script: &script,
            sudo,
            timeout,
            grace: COPY_GRACE,
        };
        let output = self.run(&request, None).await?;
        if output.success() {
            return Ok(());
        }
        let done = if keep { "rename" } else { "remove" };
        Err(self.remote(format!(
            "{done} {} failed ({}){}",
            part_name(remote, writer),
            if output.timed_out {
                "timed out".to_string()
            } else {
                exit_text(output.exit_status)
            },
            tail(&output.stderr)
        )))
    }

    /// Runs `script` through `sh -c` with `feed` writing its standard input, within `timeout`
    /// (then the script's process group is killed); returns what `feed` returned and the first
    /// 4 KiB of the script's standard output, or why the script failed (its exit status and the
    /// end of its standard error), named by `what`.
    async fn fed<'t, T, F>(
        &'t self,
        script: &str,
        what: &str,
        sudo: bool,
        timeout: Duration,
        feed: impl FnOnce(Stdin<'t>) -> F,
    ) -> Result<(T, Vec<u8>), TransportError>
    where
        F: Future<Output = T>,
    {
        let argv = with_sudo(sudo, &["sh", "-c", script]);
        let Proc {
            stdin,
            mut stdout,
            stderr,
            exit,
        } = self.spawn(&argv).await?;
        let pgid = GroupId::default();
        let mut err = Capture::new(None);
        let mut reply = Vec::new();
        let mut guard = KillOnDrop::new(self.killer(), &pgid, sudo, COPY_GRACE);
        let (result, timed_out, _) = {
            let mut stdout = (&mut stdout).take(4096);
            let work = async {
                let (fed, _, _) = tokio::join!(
                    feed(stdin),
                    stdout.read_to_end(&mut reply),
                    pump(stderr, &mut err, Some(&pgid))
                );
                (fed, exit.await)
            };
            let supervised =
                supervise(&self.killer(), &pgid, sudo, timeout, COPY_GRACE, work).await;
            guard.disarm();
            supervised
        };
        let stderr = err.finish("stderr");
        let Some((fed, status)) = result.filter(|_| !timed_out) else {
            return Err(self.remote(format!(
                "{what} timed out after {}{}",
                crate::humanize::limit(timeout),
                tail(&stderr)
            )));
        };
        let status = status?;
        if status != Some(0) {
            return Err(self.remote(format!(
                "{what} failed ({}){}",
                exit_text(status),
                tail(&stderr)
            )));
        }
        Ok((fed, reply))
    }

    /// Streams a remote file to `local` (same `.WRITER.part` + fsync + rename discipline on the
    /// controller), creating parent dirs, counting the bytes received on `meter`; returns bytes
    /// copied.
    pub async fn pull(
        &self,
        remote: &str,
        local: &Path,
        writer: &str,
        sudo: bool,
        timeout: Duration,
        meter: &TransferMeter,
    ) -> Result<u64, TransportError> {
        let what = format!("pull {remote} to {}", local.display());
        let part = part_path(local, writer);
        if let Some(parent) = local.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(TransportError::io(format!("create {}", parent.display())))?;
        }
        let file = tokio::fs::File::create(&part)
            .await
            .map_err(TransportError::io(format!("create {}", part.display())))?;
        let argv = with_sudo(sudo, &["sh", "-c", &pull_script(remote)]);
        let proc = match self.spawn(&argv).await {
            Ok(proc) => proc,
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(e);
            }
        };
        let Proc {
            stdin,
            stdout,
            stderr,
            exit,
        } = proc;
        drop(stdin);
        let pgid = GroupId::default();
        let mut err = Capture::new(None);
        let mut guard = KillOnDrop::new(self.killer(), &pgid, sudo, COPY_GRACE);
        let (result, timed_out, _) = {
            let receive = async move {
                let mut reader = BufReader::with_capacity(256 * 1024, stdout);
                let mut header = Vec::new();
                (&mut reader)
                    .take(64)
                    .read_until(b'\n', &mut header)
                    .await?;
                if let Ok(announced) = String::from_utf8_lossy(&header).trim().parse() {
                    meter.set_total(announced);
                }
                let mut file = Metered::new(file, meter);
                let received = tokio::io::copy_buf(&mut reader, &mut file).await?;
                file.into_inner().flush().await?;
                Ok::<_, std::io::Error>((header, received))
            };
            let work = async {
                let (received, _) = tokio::join!(receive, pump(stderr, &mut err, Some(&pgid)));
                (received, exit.await)
            };
            let supervised =
                supervise(&self.killer(), &pgid, sudo, timeout, COPY_GRACE, work).await;
            guard.disarm();
            supervised
        };
        let stderr = err.finish("stderr");
        let checked = (|| {
            let Some((received, status)) = result.filter(|_| !timed_out) else {
                return Err(self.remote(format!(
                    "{what} timed out after {}{}",
                    crate::humanize::limit(timeout),
                    tail(&stderr)
                )));
            };
            let status = status?;
            if status != Some(0) {
                return Err(self.remote(format!(
                    "{what} failed ({}){}",
                    exit_text(status),
                    tail(&stderr)
                )));
            }
            let (header, received) =
                received.map_err(TransportError::io(format!("write {}", part.display())))?;
            let announced = String::from_utf8_lossy(&header).trim().parse::<u64>().ok();
            if announced != Some(received) {
                return Err(self.remote(format!(
                    "{what}: the remote side announced {} bytes, {received} arrived",
                    String::from_utf8_lossy(&header).trim()
                )));
            }
            Ok(received)
        })();
        let received = match checked {
            Ok(received) => received,
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(e);
            }
        };
        let (from, to) = (part.clone(), local.to_path_buf());
        tokio::task::spawn_blocking(move || crate::atomic_file::commit(&from, &to))
            .await
            .map_err(|join| std::io::Error::other(join.to_string()))
            .and_then(|r| r)
            .map_err(TransportError::io(format!(
                "commit {} to {}",
                part.display(),
                local.display()
            )))?;
        Ok(received)
    }
}

/// The remote side of a push: data on stdin into `remote.WRITER.part`, checked, fsync'd, renamed;
/// prints the size that landed.
pub(super) fn push_script(remote: &str, writer: &str, expected: u64) -> String {
    format!(
        "{prologue}set -e\n\
         f={file}\n\
         p={part}\n\
         d=$(dirname -- \"$f\")\n\
         mkdir -p -- \"$d\"\n\
         trap 'rm -f -- \"$p\"' EXIT\n\
         cat > \"$p\"\n\
         n=$(wc -c < \"$p\")\n\
         if [ \"$n\" -ne {expected} ]; then echo \"etcdrill: received $n of {expected} bytes\" >&2; exit 1; fi\n\
         sync -- \"$p\" 2>/dev/null || sync\n\
         mv -f -- \"$p\" \"$f\"\n\
         trap - EXIT\n\
         sync -- \"$d\" 2>/dev/null || :\n\
         wc -c < \"$f\"\n",
        prologue = prologue(),
        file = shell_quote(remote),
        part = shell_quote(&part_name(remote, writer)),
    )
}

/// The remote side of [`Transport::receive`]: data on stdin into `remote.WRITER.part` through
/// `tee`, hashed on the way, checked that `tee` wrote it all, fsync'd; prints
/// `etcdrill-received SIZE SHA256`. The part file is removed unless the script gets that far
/// with `expected` bytes, when that is known.
/// The hash is `openssl dgst -sha256` where openssl runs (it uses the CPU's SHA instructions:
/// 0.18 s of CPU for 160 MB where coreutils' `sha256sum` took 1.1 s), else `sha256sum`.
pub(super) fn receive_script(remote: &str, writer: &str, expected: Option<u64>) -> String {
    let whole = match expected {
        Some(expected) => format!(
            "if [ \"$n\" -ne {expected} ]; then echo \"etcdrill: received $n of {expected} bytes\" >&2; exit 1; fi\n"
        ),
        None => String::new(),
    };
    format!(
        "{prologue}set -e\n\
         f={file}\n\
         p={part}\n\
         mkdir -p -- \"$(dirname -- \"$f\")\"\n\
         trap 'rm -f -- \"$p\"' EXIT\n\
         : > \"$p\"\n\
         if openssl dgst -sha256 -r </dev/null >/dev/null 2>&1; then digest() {{ openssl dgst -sha256 -r; }}; else digest() {{ sha256sum; }}; fi\n\
         r=$( {{ {{ tee -- \"$p\"; echo \"tee=$?\" >&3; }} | digest; }} 3>&1 )\n\
         case $r in *tee=0*) ;; *) echo \"etcdrill: writing $p failed\" >&2; exit 1 ;; esac\n\
         h=$(printf '%s\\n' \"$r\" | sed -n 's/^\\([0-9a-f]\\{{64\\}}\\).*/\\1/p')\n\
         n=$(($(wc -c < \"$p\")))\n\
         {whole}\
         sync -- \"$p\" 2>/dev/null || sync\n\
         trap - EXIT\n\
         echo \"etcdrill-received $n $h\"\n",
        prologue = prologue(),
        file = shell_quote(remote),
        part = shell_quote(&part_name(remote, writer)),
    )
}

/// The remote side of a pull: the size on the first line of stdout, then the bytes.
pub(super) fn pull_script(remote: &str) -> String {
    format!(
        "{prologue}set -e\n\
         f={file}\n\
         if [ ! -f \"$f\" ] || [ ! -r \"$f\" ]; then echo \"etcdrill: $f is not a readable file\" >&2; exit 1; fi\n\
         n=$(wc -c < \"$f\")\n\
         printf '%s\\n' $n\n\
         exec cat -- \"$f\"\n",
        prologue = prologue(),
        file = shell_quote(remote),
    )
}

/// `writer` as a file name part: every character outside `[A-Za-z0-9._-]` becomes `_`.
fn writer_tag(writer: &str) -> String {
    writer
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The temporary name a copy to `path` is written under: `PATH.WRITER.part`, unique per writer.
pub(super) fn part_name(path: &str, writer: &str) -> String {
    format!("{path}.{}.part", writer_tag(writer))
}

/// `path` with `.WRITER.part` appended to its file name.
pub(super) fn part_path(path: &Path, writer: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{}.part", writer_tag(writer)));
    PathBuf::from(name)
}

fn exit_text(status: Option<i32>) -> String {
    match status {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".into(),
    }
}

/// The last lines of stderr, for an error message.
fn tail(stderr: &str) -> String {
    let text = stderr.trim();
    if text.is_empty() {
        return String::new();
    }
    let start = text.len().saturating_sub(2000);
    let start = (start..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!(": {}", &text[start..])
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::process::{Command, Stdio};

    use sha2::{Digest, Sha256};

    use super::*;

    const TOOLS: [&str; 9] = [
        "tee", "sed", "wc", "sync", "mkdir", "dirname", "rm", "cat", "ps",
    ];

    /// Runs the receive script with `sh` on `data`, announced as `expected` bytes, with only
    /// `tools` and `hasher` on its PATH: what it printed and the part file it left, or its stderr.
    fn receive_with(
        hasher: &str,
        data: &[u8],
        expected: Option<u64>,
    ) -> Result<(String, Vec<u8>), String> {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        for tool in TOOLS.iter().chain([&hasher]) {
            let found = ["/usr/bin", "/bin"]
                .iter()
                .map(|d| Path::new(d).join(tool))
                .find(|p| p.exists())
                .unwrap_or_else(|| panic!("no {tool}"));
            std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
        }
        let target = dir.path().join("backup/copy.db");
        let mut child = Command::new("/bin/sh")
            .args([
                "-c",
                &receive_script(target.to_str().unwrap(), "run1.cp1", expected),
            ])
            .env_clear()
            .env("PATH", &bin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(data).unwrap();
        let out = child.wait_with_output().unwrap();
        let part = part_path(&target, "run1.cp1");
        if !out.status.success() {
            assert!(!part.exists(), "a failed receive left its part file");
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok((
            String::from_utf8(out.stdout).unwrap(),
            std::fs::read(part).unwrap(),
        ))
    }

    #[test]
    fn the_node_hashes_what_it_writes_with_openssl_or_sha256sum() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let want = format!(
            "etcdrill-received {} {}\n",
            data.len(),
            crate::humanize::hex(&Sha256::digest(&data))
        );
        for hasher in ["openssl", "sha256sum"] {
            let (stdout, written) = receive_with(hasher, &data, Some(data.len() as u64)).unwrap();
            assert_eq!(stdout, want, "{hasher}");
            assert_eq!(written, data, "{hasher}");
        }
    }

    #[test]
    fn a_stream_cut_short_leaves_no_part_file() {
        let err = receive_with("sha256sum", b"half of it", Some(20)).unwrap_err();
        assert!(err.contains("received 10 of 20 bytes"), "{err}");
        // A live stream's size is not known before it ends: what came is kept.
        let (stdout, _) = receive_with("sha256sum", b"half of it", None).unwrap();
        assert!(stdout.starts_with("etcdrill-received 10 "), "{stdout}");
    }
}
