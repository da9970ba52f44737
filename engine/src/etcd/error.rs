//! The errors of the etcd API layer, and a readable form of the client library's errors.

use std::path::PathBuf;

/// Why an etcd call, a snapshot or a verification failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// No connection could be made to any of the endpoints.
    #[error("cannot connect to {endpoints}: {source}")]
    Connect {
        /// The endpoints tried, comma-separated.
        endpoints: String,
        /// What the client library said.
        source: ApiError,
    },
    /// A call reached etcd (or tried to) and failed.
    #[error("{what}: {source}")]
    Call {
        /// The call and the endpoint, e.g. `member list on https://10.0.0.1:2379`.
        what: String,
        /// What etcd or the client library said.
        source: ApiError,
    },
    /// The call did not finish within its timeout.
    #[error("{what} did not finish within {}", crate::humanize::limit(*timeout))]
    Timeout {
        /// The call and its endpoints.
        what: String,
        /// The time it was given.
        timeout: std::time::Duration,
    },
    /// A verification did not hold, or a guard refused the call; the reason says what to do.
    #[error("{what}: {reason}")]
    Refused {
        /// The action.
        what: String,
        /// What does not hold, in words a person can act on.
        reason: String,
    },
    /// A TLS file could not be read or used. Key material is never shown, only paths.
    #[error("cannot use TLS file {}: {source}", path.display())]
    Tls {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// How to reach etcd is configured inconsistently (e.g. a client certificate without a key).
    #[error("etcd access is misconfigured: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// A file on the controller could not be read or written.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `write snapshot`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A snapshot stream or file is not a sound etcd snapshot.
    #[error("snapshot {}: {reason}", path.display())]
    Snapshot {
        /// The file.
        path: PathBuf,
        /// What is wrong: it says "corrupt" or "no sha256 trailer".
        reason: String,
    },
    /// The action is not one this layer runs.
    #[error("{action} is not an etcd API action; it cannot run from the controller's etcd client")]
    Unsupported {
        /// The action's name.
        action: &'static str,
    },
}

impl EtcdError {
    /// Whether this is a timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, EtcdError::Timeout { .. })
    }
}

/// An error from the etcd client library, shown as one readable line: etcd's own message and
/// the gRPC code, or the transport failure with its causes (e.g. "connection refused").
#[derive(Debug)]
pub struct ApiError(pub etcd_client::Error);

impl ApiError {
    /// The gRPC status, when etcd (or the transport) answered with one.
    pub fn status(&self) -> Option<&tonic::Status> {
        match &self.0 {
            etcd_client::Error::GRpcStatus(status) => Some(status),
            _ => None,
        }
    }

    /// etcd's message (gRPC status message), or the whole text otherwise.
    pub fn message(&self) -> String {
        match self.status() {
            Some(status) => status.message().to_string(),
            None => self.to_string(),
        }
    }

    /// Whether etcd answered "permission denied" (the caller lacks a role), which still proves
    /// the member is up and serving.
    pub fn is_permission_denied(&self) -> bool {
        self.status()
            .is_some_and(|s| s.code() == tonic::Code::PermissionDenied)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::error::Error as _;
        let (first, cause, code) = match &self.0 {
            etcd_client::Error::GRpcStatus(status) => (
                status.message().to_string(),
                status.source(),
                Some(status.code()),
            ),
            etcd_client::Error::TransportError(err) => (err.to_string(), err.source(), None),
            other => (other.to_string(), None, None),
        };
        // The message and its causes, skipping tonic's generic wrappers and repeats.
        let mut parts: Vec<String> = Vec::new();
        let mut push = |text: String| {
            if !text.is_empty()
                && text != "transport error"
                && !parts.iter().any(|p| p.contains(&text))
            {
                parts.push(text);
            }
        };
        push(first);
        let mut cause = cause;
        while let Some(err) = cause {
            push(err.to_string());
            cause = err.source();
        }
        let text = parts.join(": ");
        f.write_str(&text)?;
        if let Some(code) = code {
            write!(f, " ({code:?})")?;
        }
        if text.contains("UnknownIssuer") {
            f.write_str("; the CA file is not the CA that signed the server's certificate")?;
        } else if text.contains("BadCertificate") || text.contains("CertificateRequired") {
            f.write_str(
                "; the server refused the client certificate (none given, or not signed by a \
                 CA the server trusts)",
            )?;
        } else if text.contains("NotValidForName") {
            f.write_str("; the server's certificate does not name this endpoint's host")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl From<etcd_client::Error> for ApiError {
    fn from(err: etcd_client::Error) -> Self {
        ApiError(err)
    }
}
