//! A tiny HTTP/1.1 GET for a member's `/metrics` on its client URL: plain TCP for `http://`,
//! rustls with the client certificate for `https://` (etcd serves `/metrics` on the client port
//! too; kubeadm's separate metrics URL listens on the node's loopback only).
//!
//! One request per connection (`Connection: close`), the body read to the end, `chunked`
//! transfer encoding decoded. No redirects, no compression, no keep-alive.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::target::TlsPaths;

/// Largest response accepted (etcd's metrics are a few hundred kB).
const MAX_RESPONSE: usize = 32 << 20;

/// Fetches `/metrics` from members, with one TLS configuration for all.
#[derive(Clone)]
pub struct MetricsClient {
    tls: Option<Arc<ClientConfig>>,
}

impl MetricsClient {
    /// A client using these TLS files (a CA is needed for https; the certificate and key when
    /// the members require client certificates, as kubeadm's do).
    pub fn new(tls: Option<&TlsPaths>) -> Result<MetricsClient, String> {
        let Some(paths) = tls else {
            return Ok(MetricsClient { tls: None });
        };
        let Some(ca) = &paths.ca else {
            return Ok(MetricsClient { tls: None });
        };
        let mut roots = RootCertStore::empty();
        for cert in read_certs(ca)? {
            roots
                .add(cert)
                .map_err(|e| format!("CA {}: {e}", ca.display()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let config = match (&paths.cert, &paths.key) {
            (Some(cert), Some(key)) => {
                let certs = read_certs(cert)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| format!("client key {}: {e}", key.display()))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| format!("client certificate {}: {e}", cert.display()))?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(MetricsClient {
            tls: Some(Arc::new(config)),
        })
    }

    /// `GET <client_url>/metrics`, within `timeout`; the body, or why not.
    pub async fn metrics(&self, client_url: &str, timeout: Duration) -> Result<String, String> {
        let url = format!("{}/metrics", client_url.trim_end_matches('/'));
        match tokio::time::timeout(timeout, self.get(&url)).await {
            Ok(result) => result.map_err(|e| format!("GET {url}: {e}")),
            Err(_) => Err(format!(
                "GET {url}: no answer within {}",
                crate::humanize::limit(timeout)
            )),
        }
    }

    async fn get(&self, url: &str) -> Result<String, String> {
        let parsed = Url::parse(url)?;
        let tcp = TcpStream::connect((parsed.host.as_str(), parsed.port))
            .await
            .map_err(|e| e.to_string())?;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/plain\r\nUser-Agent: etcdrill\r\nConnection: close\r\n\r\n",
            parsed.path, parsed.authority
        );
        let raw = if parsed.https {
            let config = self.tls.clone().ok_or(
                "an https endpoint needs a CA (--cacert, ETCDCTL_CACERT or the inventory)",
            )?;
            let name = ServerName::try_from(parsed.host.clone())
                .map_err(|e| format!("host {}: {e}", parsed.host))?;
            let stream = TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            exchange(stream, &request).await?
        } else {
            exchange(tcp, &request).await?
        };
        let response = parse_response(&raw)?;
        if response.status != 200 {
            return Err(format!("HTTP status {}", response.status));
        }
        String::from_utf8(response.body).map_err(|_| "the body is not UTF-8".to_string())
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(certs)
}

/// Sends the request and reads the whole answer. A peer that closes without TLS close_notify
/// still gives what it sent; the response parser checks it is complete.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &str,
) -> Result<Vec<u8>, String> {
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buffer[..n]);
                if raw.len() > MAX_RESPONSE {
                    return Err(format!("the response exceeds {MAX_RESPONSE} bytes"));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(raw)
}

/// The parts of a URL a GET needs.
#[derive(Debug, PartialEq, Eq)]
struct Url {
    https: bool,
    /// Host without IPv6 brackets.
    host: String,
    port: u16,
    /// `host:port` as written, for the Host header.
    authority: String,
    path: String,
}

impl Url {
    fn parse(url: &str) -> Result<Url, String> {
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!("`{url}` is not an http:// or https:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
            let end = inner.find(']').ok_or("an unclosed IPv6 address")?;
            let port = inner[end + 1..].strip_prefix(':');
            (&inner[..end], port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(p) => p.parse().map_err(|_| format!("bad port in `{url}`"))?,
            None if https => 443,
            None => 80,
        };
        if host.is_empty() {
            return Err(format!("no host in `{url}`"));
        }
        Ok(Url {
            https,
            host: host.to_string(),
            port,
            authority: authority.to_string(),
            path: path.to_string(),
        })
    }
}

/// A parsed response.
#[derive(Debug, PartialEq, Eq)]
struct Response {
    status: u16,
    body: Vec<u8>,
}

fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the response has no complete header")?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| "the header is not text")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line `{status_line}`"))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
            {
                chunked = true;
            } else if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            }
        }
    }
    let rest = &raw[head_end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(length) = length {
        if rest.len() < length {
            return Err(format!(
                "the body was cut short: {} of {length} bytes",
                rest.len()
            ));
        }
        rest[..length].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { status, body })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("the chunked body was cut short")?;
        let size_text = std::str::from_utf8(&data[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size `{size_text}`"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if data.len() < size + 2 {
            return Err("the chunked body was cut short".into());
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_what_a_get_needs() {
        let url = Url::parse("https://10.0.0.1:2379/metrics").unwrap();
        assert_eq!(
            url,
            Url {
                https: true,
                host: "10.0.0.1".into(),
                port: 2379,
                authority: "10.0.0.1:2379".into(),
                path: "/metrics".into()
            }
        );
        let v6 = Url::parse("http://[fd00::1]:2379").unwrap();
        assert_eq!(
            (v6.host.as_str(), v6.port, v6.path.as_str()),
            ("fd00::1", 2379, "/")
        );
        assert_eq!(Url::parse("https://etcd/metrics").unwrap().port, 443);
        for bad in ["10.0.0.1:2379", "https://:2379/", "http://a:port/"] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses_with_length_or_chunks_are_read() {
        let sized = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse_response(sized).unwrap().body, b"hello");
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap().body, b"hello world");
        let closed = b"HTTP/1.0 404 Not Found\r\n\r\nnope";
        assert_eq!(parse_response(closed).unwrap().status, 404);
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhello";
        assert!(parse_response(short).unwrap_err().contains("cut short"));
        let cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel";
        assert!(parse_response(cut).is_err());
        assert!(parse_response(b"HTTP/1.1 200").is_err());
    }

    #[tokio::test]
    async fn metrics_are_fetched_over_plain_http() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 1024];
            let n = socket.read(&mut request).await.unwrap();
            let request = String::from_utf8_lossy(&request[..n]).into_owned();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nup 1\n\r\n0\r\n\r\n")
                .await
                .unwrap();
            request
        });
        let client = MetricsClient::new(None).unwrap();
        let body = client
            .metrics(&format!("http://127.0.0.1:{port}/"), Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(body, "up 1\n");
        let request = server.await.unwrap();
        assert!(
            request.starts_with("GET /metrics HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
            "{request}"
        );
    }
}
