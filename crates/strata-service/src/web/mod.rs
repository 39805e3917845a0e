//! The web UI: server-rendered HTML pages (askama templates in `templates/`, checked and
//! compiled with the crate, HTML-escaped by default) for the builds list (`/`), a build
//! (`/builds/ID`), an image (`/images/NAME`: its builds, floating tags and the package
//! diff between two of its builds), the package search (`/search`) and the rebuild events
//! (`/events`). Every page works without JavaScript; one small script (`/static/strata.js`,
//! the only script the Content-Security-Policy allows) keeps the builds list and a running
//! build's state and log live.
//!
//! Reading needs a token, sent as the `strata_token` cookie that `/login` sets (HttpOnly,
//! SameSite=Strict) and checked exactly as the API checks a bearer token, unless the
//! server runs with anonymous read. `/` answers 200 either way (probes use it): without
//! access, a page saying the service is up.

mod auth;
mod diff;
mod pages;
#[cfg(test)]
mod tests;

use crate::AppState;
use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The pages, the login, the script and the style sheet; merged into the service's router
/// (the fallback, an HTML 404 page — JSON under `/api/` — included).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::builds))
        .route("/builds/{id}", get(pages::build))
        .route("/builds/{id}/log", get(pages::log_chunk))
        .route("/builds/{id}/log.txt", get(pages::log_text))
        .route("/images/{*name}", get(pages::image))
        .route("/search", get(pages::search))
        .route("/events", get(pages::events))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", get(auth::logout_form).post(auth::logout))
        .route("/static/strata.js", get(script))
        .route("/static/strata.css", get(style))
        .fallback(fallback)
        .layer(axum::middleware::map_response(secure))
}

/// What every answer of the UI carries: scripts and styles from this server only, nothing
/// inline, no framing, no MIME sniffing, and pages that are not kept in shared caches.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn secure(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    resp
}

async fn script() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], include_str!("../../static/strata.js"))
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], include_str!("../../static/strata.css"))
}

/// Unknown paths: a 404 page, or under `/api/` the API's JSON error.
async fn fallback(uri: axum::http::Uri) -> Response {
    if uri.path() == "/api" || uri.path().starts_with("/api/") {
        let body = strata_client::ErrorBody { error: format!("no API operation at {}", uri.path()) };
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    }
    // The chrome of a 404 does not say who is signed in: no database look-up for paths
    // that do not exist.
    secure(PageError::new(StatusCode::NOT_FOUND, format!("There is no page at {}.", uri.path())).into_response()).await
}

/// Who is reading, for the navigation bar.
#[derive(Default)]
pub struct Chrome {
    pub user: Option<String>,
    pub anonymous: bool,
}

/// A rendered template as a response.
fn render(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!("web: rendering a page: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "The page could not be rendered; the server's log says why.\n").into_response()
        }
    }
}

/// An error as a page: the server's message, never more.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> PageError {
        PageError { status, message: message.into() }
    }

    pub fn not_found(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn bad_request(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::BAD_REQUEST, message)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    chrome: Chrome,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = match self.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::BAD_REQUEST => "Bad request",
            StatusCode::UNAUTHORIZED => "Not signed in",
            StatusCode::FORBIDDEN => "Forbidden",
            s if s.is_server_error() => "Server error",
            _ => "Error",
        };
        render(self.status, &ErrorPage { title, message: &self.message, chrome: Chrome::default() })
    }
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> PageError {
        tracing::error!("web: database: {e}");
        PageError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("database: {e}"))
    }
}

/// Percent-encoding of everything but unreserved characters: query values and cookie
/// values.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`encode`] (`+` stays `+`); `None` for a bad escape or non-UTF-8.
pub fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
