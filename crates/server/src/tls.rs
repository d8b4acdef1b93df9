//! HTTPS for `waygate serve --tls-cert FILE --tls-key FILE`: the certificate chain and key
//! read once at startup (PEM), checked against each other, and the TLS handshake of each
//! connection bounded by the header-read timeout.
//!
//! rustls with the `ring` provider, the one the rest of the tree (reqwest's `rustls-tls`)
//! already compiles in; no second crypto provider. Without the `tls` feature (the CLI's
//! `--no-default-features`) `--tls-cert` is refused at startup, saying so.

use std::path::{Path, PathBuf};
use std::time::Duration;

#[cfg(feature = "tls")]
use rustls::pki_types::pem::{self, PemObject};
#[cfg(feature = "tls")]
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use waygate_executor::Shutdown;

/// The TLS side of a server: what each accepted connection is wrapped in.
#[derive(Clone)]
pub struct Tls {
    #[cfg(feature = "tls")]
    acceptor: tokio_rustls::TlsAcceptor,
    /// A build without TLS has none to serve.
    #[cfg(not(feature = "tls"))]
    never: std::convert::Infallible,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

/// Why the certificate or key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file is missing, unreadable or holds no PEM item of the kind wanted.
    #[error("{flag} {}: {why}", file.display())]
    File {
        /// `--tls-cert` or `--tls-key`.
        flag: &'static str,
        /// The file.
        file: PathBuf,
        /// Why.
        why: String,
    },
    /// rustls refused the pair (the key does not match the certificate, an unsupported key).
    #[error("--tls-cert {} with --tls-key {}: {why}", cert.display(), key.display())]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        why: String,
    },
    /// This build has no TLS.
    #[error("--tls-cert {}: this waygate was built without TLS (feature `tls`); serve plain HTTP behind a reverse proxy (docs/api.md)", cert.display())]
    NotBuilt {
        /// The certificate file.
        cert: PathBuf,
    },
}

#[cfg(feature = "tls")]
impl Tls {
    /// Reads the certificate chain (PEM, leaf first) and its private key (PEM: PKCS#8,
    /// PKCS#1 or SEC1) and checks the key belongs to the leaf certificate.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let file_error = |flag: &'static str, file: &Path, e: pem::Error| TlsError::File {
            flag,
            file: file.to_owned(),
            why: describe(e, flag),
        };
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| file_error("--tls-cert", cert, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| file_error("--tls-cert", cert, e))?;
        if chain.is_empty() {
            return Err(file_error("--tls-cert", cert, pem::Error::NoItemsFound));
        }
        let private =
            PrivateKeyDer::from_pem_file(key).map_err(|e| file_error("--tls-key", key, e))?;
        let pair = |why: String| TlsError::Pair {
            cert: cert.to_owned(),
            key: key.to_owned(),
            why,
        };
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| pair(e.to_string()))?
            .with_no_client_auth()
            // Checks the key against the leaf certificate's public key.
            .with_single_cert(chain, private)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => pair(
                    "the key does not belong to the certificate (the first in the file)".into(),
                ),
                other => pair(other.to_string()),
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)),
        })
    }
}

#[cfg(feature = "tls")]
impl Tls {
    /// The TLS side of an accepted connection, or `None` (logged) when its handshake fails.
    /// A client that never finishes its handshake is dropped after `limit`, like one that
    /// never sends its request head, and at once on SIGTERM (it has no request in flight).
    pub(crate) async fn handshake(
        &self,
        stream: TcpStream,
        limit: Duration,
        stopping: &Shutdown,
    ) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
        let accepted = tokio::select! {
            accepted = tokio::time::timeout(limit, self.acceptor.accept(stream)) => accepted,
            _ = stopping.wait() => return None,
        };
        match accepted {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(e)) => {
                tracing::debug!("TLS handshake: {e}");
                None
            }
            Err(_) => {
                tracing::debug!("TLS handshake not done after {limit:?}");
                None
            }
        }
    }
}

#[cfg(not(feature = "tls"))]
impl Tls {
    /// Refuses: this build has no TLS.
    pub fn from_pem_files(cert: &Path, _key: &Path) -> Result<Tls, TlsError> {
        Err(TlsError::NotBuilt {
            cert: cert.to_owned(),
        })
    }

    /// Never called: there is no [`Tls`] without the feature.
    pub(crate) async fn handshake(
        &self,
        _stream: TcpStream,
        _limit: Duration,
        _stopping: &Shutdown,
    ) -> Option<TcpStream> {
        match self.never {}
    }
}

#[cfg(feature = "tls")]
fn describe(e: pem::Error, flag: &str) -> String {
    match e {
        pem::Error::Io(io) => io.to_string(),
        pem::Error::NoItemsFound => match flag {
            "--tls-cert" => "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
            _ => "no PEM private key (-----BEGIN PRIVATE KEY-----, RSA or EC) in it".into(),
        },
        other => format!("not valid PEM: {other}"),
    }
}
