//! Who reads the pages: the `strata_token` cookie, checked as the API checks a bearer token
//! (the token cache, then the database, by the token's hash), or anyone when the server
//! runs with anonymous read. The login form sets the cookie, the logout clears it.

use super::{render, Chrome, PageError};
use crate::AppState;
use askama::Template;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

pub const COOKIE: &str = "strata_token";

/// Access to the pages.
pub enum Access {
    /// A valid token: its name.
    User(String),
    /// No valid token, and anonymous read is on.
    Anonymous,
    /// No valid token, and anonymous read is off.
    Denied,
}

impl Access {
    /// The navigation bar's view of who reads, or — denied — the answer to give instead: a
    /// redirect to the login form that comes back to `uri`.
    pub fn chrome(&self, uri: &Uri) -> Result<Chrome, Redirect> {
        match self {
            Access::User(name) => Ok(Chrome { user: Some(name.clone()), anonymous: false }),
            Access::Anonymous => Ok(Chrome { user: None, anonymous: true }),
            Access::Denied => {
                let here = uri.path_and_query().map_or("/", |p| p.as_str());
                Err(Redirect::to(&format!("/login?next={}", super::encode(here))))
            }
        }
    }
}

/// The token in the request's `strata_token` cookie.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .and_then(|(_, v)| super::decode(v.trim_matches('"')))
        .filter(|t| !t.is_empty())
}

/// The name of the token, if it is one: the API's own look-up.
async fn token_name(st: &AppState, token: &str) -> Result<Option<String>, sqlx::Error> {
    if token.len() > 4096 {
        return Ok(None);
    }
    let hash = crate::hash_secret(token.trim());
    if let Some((name, _role)) = st.tokens.get(&hash) {
        return Ok(Some(name));
    }
    Ok(match st.db.token(&hash).await? {
        Some((name, role)) => {
            st.tokens.put(&hash, &name, &role);
            Some(name)
        }
        None => None,
    })
}

impl FromRequestParts<AppState> for Access {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Access, PageError> {
        if let Some(token) = cookie_token(&parts.headers) {
            if let Some(name) = token_name(st, &token).await? {
                return Ok(Access::User(name));
            }
        }
        Ok(if st.config.anonymous_read { Access::Anonymous } else { Access::Denied })
    }
}

/// Where to go after signing in: a path of this server only (never `//host` or a URL).
fn safe_next(next: Option<&str>) -> String {
    match next {
        // Visible ASCII only: a Location header's value, sent as it is.
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && n.bytes().all(|b| (0x21..0x7f).contains(&b)) && n.len() <= 2048 => n.to_string(),
        _ => "/".to_string(),
    }
}

/// A form posted from another site is refused: a browser sends `Origin` with every POST,
/// and it must name this server.
fn same_origin(headers: &HeaderMap) -> Result<(), PageError> {
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let origin = origin.to_str().unwrap_or("");
    let origin_host = origin.split_once("://").map_or("", |(_, h)| h);
    if origin_host.is_empty() || origin_host != host {
        return Err(PageError::new(StatusCode::FORBIDDEN, "this form was posted from another site"));
    }
    Ok(())
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    title: &'static str,
    chrome: Chrome,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub async fn login_form(access: Access, q: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>) -> Response {
    let chrome = access.chrome(&Uri::from_static("/")).unwrap_or_default();
    let next = safe_next(q.as_ref().ok().and_then(|q| q.next.as_deref()));
    render(StatusCode::OK, &LoginPage { title: "Sign in", chrome, next, error: None })
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
    next: Option<String>,
}

pub async fn login(State(st): State<AppState>, headers: HeaderMap, form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let Ok(Form(form)) = form else {
        return Err(PageError::bad_request("the sign-in form needs a token"));
    };
    let next = safe_next(form.next.as_deref());
    let token = form.token.trim();
    if token_name(&st, token).await?.is_none() {
        let page = LoginPage { title: "Sign in", chrome: Chrome::default(), next, error: Some("That token is not valid.".into()) };
        return Ok(render(StatusCode::UNAUTHORIZED, &page));
    }
    let https = headers.get("x-forwarded-proto").is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict{}", super::encode(token), if https { "; Secure" } else { "" });
    let mut resp = Redirect::to(&next).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).map_err(|_| PageError::bad_request("that token cannot be kept in a cookie"))?);
    Ok(resp)
}

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage {
    title: &'static str,
    chrome: Chrome,
}

pub async fn logout_form(access: Access) -> Response {
    let chrome = access.chrome(&Uri::from_static("/")).unwrap_or_default();
    render(StatusCode::OK, &LogoutPage { title: "Sign out", chrome })
}

pub async fn logout(headers: HeaderMap) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let mut resp = Redirect::to("/login").into_response();
    let clear = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    resp.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&clear).expect("a valid header"));
    Ok(resp)
}
