//! The HTTP side: accepts connections and serves each with hyper (HTTP/1.1, keep-alive,
//! upgrades for WebSockets), answering from the host's axum `Router`; stamps every answer with
//! the host process and build; after a host upgrade, closes each connection after its next
//! answer.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::Drain;

/// What the host counts: it lives outside every generation, so reloads keep it.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted so far.
    pub connections: AtomicU64,
    /// Connections open now.
    pub open_connections: AtomicU64,
    /// Requests answered so far.
    pub requests: AtomicU64,
    /// Of those, answered with a 5xx status.
    pub server_errors: AtomicU64,
    /// This build's label, sent in every answer's `x-host-build` header (with the process id
    /// in `x-served-by`), so a client can tell which host answered it around an upgrade.
    pub build: String,
}

impl Counters {
    /// The `/stats` answer.
    pub fn stats(&self) -> String {
        format!(
            "connections {} open {} requests {} server_errors {}\n",
            self.connections.load(Ordering::Relaxed),
            self.open_connections.load(Ordering::Relaxed),
            self.requests.load(Ordering::Relaxed),
            self.server_errors.load(Ordering::Relaxed)
        )
    }
}

/// Serves `app` on `listener` until `drain` starts: then the listener is dropped (a new host
/// that shares it accepts from then on) and each connection closes after its next answer. A
/// failed `accept` is logged and retried, never the end of the server.
pub async fn serve_until(listener: TcpListener, app: Router, counters: Arc<Counters>, drain: Drain) {
    loop {
        let accepted = tokio::select! {
            () = drain.started() => None,
            accepted = listener.accept() => Some(accepted),
        };
        let Some(accepted) = accepted else {
            tracing::info!("draining: no longer accepting connections");
            return;
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, a connection reset before it was accepted, …: the
                // listener stays; wait a moment rather than spin.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY");
        }
        counters.connections.fetch_add(1, Ordering::Relaxed);
        counters.open_connections.fetch_add(1, Ordering::Relaxed);
        let (app, counters, drain) = (app.clone(), Arc::clone(&counters), drain.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|request| {
                answer(app.clone(), request, Arc::clone(&counters), drain.clone())
            });
            let connection = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%error, "connection ended with an error");
            }
            counters.open_connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn answer(
    mut app: Router,
    request: hyper::Request<Incoming>,
    counters: Arc<Counters>,
    drain: Drain,
) -> Result<hyper::Response<Body>, Infallible> {
    let mut response = tower_service::Service::call(&mut app, request).await?;
    counters.requests.fetch_add(1, Ordering::Relaxed);
    if response.status().is_server_error() {
        counters.server_errors.fetch_add(1, Ordering::Relaxed);
    }
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert("x-served-by", HeaderValue::from(std::process::id()));
    if let Ok(build) = HeaderValue::from_str(&counters.build) {
        headers.insert("x-host-build", build);
    }
    // Checked when the answer is ready, so a request that started before the drain and ends
    // after it closes its connection too: hyper ends a connection after an answer that says so.
    // Not on a WebSocket's `101 Switching Protocols`: the socket lives on until it closes.
    if drain.is_draining() && !switching {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(response)
}
