//! Scenarios that call `PluginRouter` as a `tower::Service` from host code (no hyper in
//! between), keep what it handed out, let the generation go and look at it again: nothing
//! a response gives the host may point into, or run code of, a library that is gone.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use hotswap_axum::PluginRouter;
use http_body_util::BodyExt;
use hyper::service::Service as _;
use hyper_util::service::TowerToHyperService;

use crate::Host;

fn request(path: &str) -> Request {
    Request::builder().uri(path).body(Body::empty()).unwrap()
}

/// A header name made by `HeaderName::from_static` in the plugin (its bytes in the plugin's
/// read-only data), kept after the response's body is dropped and its generation unmapped;
/// then an error type of the plugin's own ending a body stream, kept likewise.
pub async fn kept_after_unmap(host: &Arc<Host>) -> bool {
    let service = TowerToHyperService::new(PluginRouter::with_state(host.manager.clone(), "web", host.state.clone()));

    let response = service.call(request("/static-name")).await.unwrap();
    let (head, body) = response.into_parts();
    drop(body);
    let generation = host.reload().await;
    let gone = !host.wait_mapped(1, false).await;
    let names: Vec<String> = head
        .headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-static"))
        .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap_or("?")))
        .collect();
    println!("HEAD {} {names:?} generation={generation} gen1_unmapped={gone}", head.status.as_u16());

    let response = service.call(request("/body-error")).await.unwrap();
    let mut body = response.into_body();
    let mut frames = Vec::new();
    let error = loop {
        match body.frame().await {
            Some(Ok(frame)) => {
                frames.push(String::from_utf8_lossy(&frame.into_data().unwrap_or_default()).into_owned())
            }
            Some(Err(error)) => break Some(error),
            None => break None,
        }
    };
    drop(body);
    let generation = host.reload().await;
    let gone = !host.wait_mapped(2, false).await;
    let error = error.map_or_else(|| "no error".to_string(), |e| e.to_string());
    println!("BODY {frames:?} then {error} generation={generation} gen2_unmapped={gone}");
    true
}

/// A second `PluginRouter` of the same plugin with another state type: the plugin's router
/// function refuses the state, every time, even once the first router has built this
/// generation's router; the first router goes on serving.
pub async fn wrong_state(host: &Arc<Host>) -> bool {
    let wrong = TowerToHyperService::new(PluginRouter::with_state(host.manager.clone(), "web", 7u32));
    for round in 1..=2 {
        let response = wrong.call(request("/build")).await.unwrap();
        let status = response.status().as_u16();
        let text = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        println!("WRONG STATE {round} {status} {}", String::from_utf8_lossy(&text));
        let (status, body) = crate::client::get(host.addr, "/build").await;
        println!("SERVING {status} {body}");
    }
    for line in host.logs.matching("gave no router") {
        println!("{line}");
    }
    true
}
