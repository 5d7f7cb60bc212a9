//! One exchange with HAProxy's runtime API: connect to its socket, send one line (commands
//! separated by `;` run in order, in one go), read the answer until HAProxy closes the
//! connection (the non-interactive mode), all within the router's timeout and at most
//! [`MAX_ANSWER`] bytes: the socket's answers are input like any other.

use crate::source::SourceError;
use ramp_core::plan::HaproxySocket;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest answer read: `show stat` of one backend is a few kilobytes per server.
pub(crate) const MAX_ANSWER: usize = 1024 * 1024;

/// Where HAProxy's runtime API is and how long an exchange may take.
#[derive(Debug, Clone)]
pub(crate) struct Runtime {
    /// The socket, a relative unix path resolved against the plan's directory.
    socket: Socket,
    /// The most one exchange may take, connection included.
    timeout: Duration,
    /// "HAProxy runtime API at …", for messages.
    pub(crate) location: String,
}

/// A resolved runtime-API socket.
#[derive(Debug, Clone)]
enum Socket {
    /// A unix socket.
    Unix(PathBuf),
    /// A TCP address.
    Tcp(std::net::SocketAddr),
}

impl Runtime {
    /// The runtime API of the plan's socket, relative paths taken from `base_dir`.
    pub(crate) fn new(socket: &HaproxySocket, base_dir: &Path, timeout: Duration) -> Runtime {
        let (socket, location) = match socket {
            HaproxySocket::Unix(p) => {
                let path = base_dir.join(p);
                let at = format!("HAProxy runtime API at unix socket {}", path.display());
                (Socket::Unix(path), at)
            }
            HaproxySocket::Tcp(addr) => {
                (Socket::Tcp(*addr), format!("HAProxy runtime API at {addr}"))
            }
        };
        Runtime {
            socket,
            timeout,
            location,
        }
    }

    /// An error of this runtime API.
    pub(crate) fn error(&self, message: String) -> SourceError {
        SourceError::Router {
            router: self.location.clone(),
            message,
        }
    }

    /// Sends `command` (one line) and returns HAProxy's whole answer.
    pub(crate) async fn ask(&self, command: &str) -> Result<String, SourceError> {
        let exchange = async {
            match &self.socket {
                Socket::Unix(path) => {
                    let stream = tokio::net::UnixStream::connect(path)
                        .await
                        .map_err(|e| self.unreachable(&e))?;
                    self.exchange(stream, command).await
                }
                Socket::Tcp(addr) => {
                    let stream = tokio::net::TcpStream::connect(addr)
                        .await
                        .map_err(|e| self.unreachable(&e))?;
                    self.exchange(stream, command).await
                }
            }
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(self.error(format!(
                "no complete answer to {:?} within {} ms",
                first_word(command),
                self.timeout.as_millis()
            ))),
        }
    }

    /// Why the socket could not be reached, with what usually causes it.
    fn unreachable(&self, e: &std::io::Error) -> SourceError {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                "; is HAProxy running with `stats socket … level admin` there?"
            }
            std::io::ErrorKind::PermissionDenied => {
                "; the controller's user needs read and write access to the socket"
            }
            _ => "",
        };
        self.error(format!("cannot connect: {e}{hint}"))
    }

    /// Writes the command and reads the answer to its end, bounded.
    async fn exchange(
        &self,
        mut stream: impl AsyncRead + AsyncWrite + Unpin,
        command: &str,
    ) -> Result<String, SourceError> {
        let io = |e: std::io::Error| self.error(format!("{:?}: {e}", first_word(command)));
        stream
            .write_all(format!("{command}\n").as_bytes())
            .await
            .map_err(io)?;
        let mut answer = Vec::new();
        let mut limited = (&mut stream).take(MAX_ANSWER as u64 + 1);
        limited.read_to_end(&mut answer).await.map_err(io)?;
        if answer.len() > MAX_ANSWER {
            return Err(self.error(format!(
                "the answer to {:?} is longer than {MAX_ANSWER} bytes",
                first_word(command)
            )));
        }
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }
}

/// The command's first words, for messages ("set server", "show stat").
fn first_word(command: &str) -> String {
    command
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}
