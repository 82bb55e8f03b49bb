//! The web console and the API documentation page, served by `outdial serve` (and by
//! `outdial run --api`) from assets compiled into the binary: no CDN, works offline.
//!
//! - `/` — the console (`assets/index.html`, `app.js`, `app.css`): sign-in with an API token,
//!   the real-time monitor, campaigns, call lists, agents, the do-not-call list and an agent's
//!   soft console. It uses the REST API and the live event stream only (docs/console.md).
//! - `/docs` — Swagger UI over `/v1/openapi.json`.
//!
//! Vendored: uPlot 1.6.32 (MIT, the monitor's charts) and swagger-ui-dist 5.36.0 (Apache 2.0),
//! their licences beside them in `assets/vendor/`.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file: (URL name, content type, bytes).
type Asset = (&'static str, &'static str, &'static [u8]);

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

/// The console's files under `/console/`.
const CONSOLE: &[Asset] = &[
    ("app.js", JS, include_bytes!("assets/app.js")),
    ("app.css", CSS, include_bytes!("assets/app.css")),
    (
        "uPlot.iife.min.js",
        JS,
        include_bytes!("assets/vendor/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        CSS,
        include_bytes!("assets/vendor/uPlot.min.css"),
    ),
];

/// Swagger UI's files under `/docs/`.
const DOCS: &[Asset] = &[
    ("docs.js", JS, include_bytes!("assets/docs.js")),
    (
        "swagger-ui-bundle.js",
        JS,
        include_bytes!("assets/vendor/swagger-ui-bundle.js"),
    ),
    (
        "swagger-ui.css",
        CSS,
        include_bytes!("assets/vendor/swagger-ui.css"),
    ),
];

/// Content-Security-Policy of every page: scripts and connections to this origin only;
/// inline styles allowed (uPlot and Swagger UI set element styles), data: images (Swagger UI's
/// icons).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

/// The routes: `/`, `/console/{file}`, `/docs`, `/docs/{file}`. Any state.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { page(include_bytes!("assets/index.html")) }),
        )
        .route(
            "/docs",
            get(|| async { page(include_bytes!("assets/docs.html")) }),
        )
        .route(
            "/console/{file}",
            get(|Path(f): Path<String>| async move { asset(CONSOLE, &f) }),
        )
        .route(
            "/docs/{file}",
            get(|Path(f): Path<String>| async move { asset(DOCS, &f) }),
        )
}

fn page(bytes: &'static [u8]) -> Response {
    let mut r = (
        [
            (header::CONTENT_TYPE, HTML),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        bytes,
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// The file named `name` of `set`, or 404 (a problem document, like the API's).
fn asset(set: &[Asset], name: &str) -> Response {
    match set.iter().find(|(n, _, _)| *n == name) {
        Some((_, kind, bytes)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *bytes,
        )
            .into_response(),
        // An RFC 9457 problem, as the API answers (this module stays below `api`).
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/problem+json")],
            serde_json::json!({"type": "about:blank", "title": "Not Found", "status": 404,
                               "detail": format!("no file {name:?}")})
            .to_string(),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_pages_name_is_served() {
        let index = std::str::from_utf8(include_bytes!("assets/index.html")).unwrap();
        let docs = std::str::from_utf8(include_bytes!("assets/docs.html")).unwrap();
        for (page, set, prefix) in [(index, CONSOLE, "/console/"), (docs, DOCS, "/docs/")] {
            let named: Vec<&str> = page
                .split(prefix)
                .skip(1)
                .map(|r| r.split('"').next().unwrap())
                .collect();
            assert!(!named.is_empty(), "{page}");
            for n in named {
                assert!(set.iter().any(|(f, _, _)| *f == n), "{n} is not embedded");
            }
        }
    }
}
