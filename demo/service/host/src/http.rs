//! The HTTP side: accepts connections, keeps their state, routes requests to [`Handlers`].

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use service_shared::{Request, Response};
use tokio::net::TcpListener;

use crate::{Drain, Handlers, Route};

/// State of the host application: it lives outside every generation, so reloads keep it.
#[derive(Debug, Default)]
pub struct AppState {
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

/// Serves HTTP/1.1 with keep-alive on `listener` until the task is dropped, routing requests
/// to `handlers`. `/stats` is answered by the host itself. A failed `accept` is logged and
/// retried, never the end of the server.
pub async fn serve(listener: TcpListener, handlers: Arc<dyn Handlers>, app: Arc<AppState>) {
    serve_until(listener, handlers, app, Drain::new()).await
}

/// [`serve`] until `drain` starts: then the listener is dropped (a new host that shares it
/// accepts from then on) and each connection closes after its next answer.
pub async fn serve_until(listener: TcpListener, handlers: Arc<dyn Handlers>, app: Arc<AppState>, drain: Drain) {
    loop {
        let accepted = {
            let mut accept = std::pin::pin!(listener.accept());
            let mut stop = std::pin::pin!(drain.started());
            std::future::poll_fn(|cx| {
                if stop.as_mut().poll(cx).is_ready() {
                    return std::task::Poll::Ready(None);
                }
                accept.as_mut().poll(cx).map(Some)
            })
            .await
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
        let connection = app.connections.fetch_add(1, Ordering::Relaxed) + 1;
        app.open_connections.fetch_add(1, Ordering::Relaxed);
        let handlers = Arc::clone(&handlers);
        let app = Arc::clone(&app);
        let drain = drain.clone();
        tokio::spawn(async move {
            // Per-connection state, kept by the host across reloads.
            let served = Arc::new(AtomicU64::new(0));
            let service = service_fn(|request| {
                let n = served.fetch_add(1, Ordering::Relaxed) + 1;
                respond(request, connection, n, Arc::clone(&handlers), Arc::clone(&app), drain.clone())
            });
            let result = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service).await;
            if let Err(error) = result {
                tracing::debug!(connection, %error, "connection ended with an error");
            }
            app.open_connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn respond(
    request: hyper::Request<Incoming>,
    connection: u64,
    request_on_connection: u64,
    handlers: Arc<dyn Handlers>,
    app: Arc<AppState>,
    drain: Drain,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let uri = request.uri();
    let query = uri.query().unwrap_or("").split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key.to_string(), value.to_string())
    });
    let routed = Request { path: uri.path().to_string(), query: query.collect(), connection, request_on_connection };
    let response = if request.method() != hyper::Method::GET {
        Response::error(405, "only GET\n")
    } else if routed.path == "/stats" {
        Response::ok(format!(
            "connections {} open {} requests {} server_errors {}\n",
            app.connections.load(Ordering::Relaxed),
            app.open_connections.load(Ordering::Relaxed),
            app.requests.load(Ordering::Relaxed),
            app.server_errors.load(Ordering::Relaxed)
        ))
    } else {
        match Route::of(&routed.path) {
            Some(route) => handlers.handle(route, routed).await,
            None => Response::error(404, "no such route (try /hello, /quote, /fail, /stats)\n"),
        }
    };
    app.requests.fetch_add(1, Ordering::Relaxed);
    if response.status >= 500 {
        app.server_errors.fetch_add(1, Ordering::Relaxed);
    }
    let status = hyper::StatusCode::from_u16(response.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let mut reply = hyper::Response::new(Full::new(Bytes::from(response.body)));
    *reply.status_mut() = status;
    let headers = reply.headers_mut();
    headers.insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain"));
    headers.insert("x-served-by", hyper::header::HeaderValue::from(std::process::id()));
    if let Ok(build) = hyper::header::HeaderValue::from_str(&app.build) {
        headers.insert("x-host-build", build);
    }
    // Checked when the answer is ready, so a request that started before the drain and ends
    // after it closes its connection too: hyper ends a connection after an answer that says so.
    if drain.is_draining() {
        headers.insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
    }
    Ok(reply)
}
