//! HTTP admin listener: `/metrics` (Prometheus text format), `/healthz`, `/readyz`.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::backend::Pool;
use crate::metrics::Metrics;

pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, pool: Arc<Pool>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            crate::clock::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        };
        let (metrics, pool) = (metrics.clone(), pool.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let response = route(&req, &metrics, &pool);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

fn route(req: &Request<Incoming>, metrics: &Metrics, pool: &Pool) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match req.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4",
            metrics.render(),
        ),
        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        // Ready once the backend answered and the pool cap is known, and while the
        // health check finds the database answering.
        "/readyz" if pool.connector().topology().writer_id().is_none() => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "no writable instance (a failover under way)\n".to_owned(),
        ),
        "/readyz" => match (pool.cap(), pool.health().not_ready()) {
            (Some(_), None) => (StatusCode::OK, "text/plain", "ready\n".to_owned()),
            (None, _) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "backend not reachable\n".to_owned(),
            ),
            (Some(_), Some(why)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("{why}\n"),
            ),
        },
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_owned(),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}
