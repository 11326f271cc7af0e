//! The signals that stop `serve`.

use tracing::info;

/// Resolves on the first SIGTERM (what the kubelet sends a container it
/// stops, a sidecar included, once the app has exited) or SIGINT (Ctrl-C
/// when run by hand).
pub(super) fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        info!(signal = name, "shutting down");
    })
}
