//! Serves the web console (docs/console.md) from the built files in `CP_CONSOLE_DIR`, on the gRPC
//! listener itself: the console calls the API over grpc-web from the same origin, so no CORS is
//! needed. Only plain `GET`/`HEAD` requests that are not gRPC are answered from the directory;
//! everything else goes on to grpc-web and the services. Every file is sent with a strict
//! Content-Security-Policy: scripts, styles and connections from this origin only, nothing inline,
//! no frames, no form submissions.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response};
use tower::{Layer, Service, ServiceExt};
use tower_http::services::ServeDir;

/// The policy sent with every console file.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; manifest-src 'self'; \
base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Checks that `dir` holds a built console (`index.html`), adding a problem otherwise.
pub fn check_dir(dir: &Path, problems: &mut Vec<String>) {
    if !dir.join("index.html").is_file() {
        problems.push(format!(
            "console directory {} has no index.html (build it with `npm run build` in console/)",
            dir.display()
        ));
    }
}

/// Puts the console in front of the gRPC services when a directory is configured.
#[derive(Clone, Debug)]
pub struct ConsoleLayer {
    dir: Option<PathBuf>,
}

impl ConsoleLayer {
    /// Serves `dir` when it is `Some`; passes every request through otherwise.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }
}

impl<S> Layer<S> for ConsoleLayer {
    type Service = Console<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Console {
            inner,
            files: self.dir.as_ref().map(ServeDir::new),
        }
    }
}

/// The console's files, or the inner (gRPC) service.
#[derive(Clone, Debug)]
pub struct Console<S> {
    inner: S,
    files: Option<ServeDir>,
}

fn is_console_request<B>(request: &Request<B>) -> bool {
    let grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    !grpc && (request.method() == Method::GET || request.method() == Method::HEAD)
}

fn add_headers<B>(path: &str, response: &mut Response<B>) {
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &'static str); 5] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // Files under assets/ carry a content hash in their name; index.html must be revalidated.
    let cache = if path.starts_with("/assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
}

impl<S> Service<Request<tonic::body::Body>> for Console<S>
where
    S: Service<Request<tonic::body::Body>, Response = Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        match &self.files {
            Some(files) if is_console_request(&request) => {
                let files = files.clone();
                let path = request.uri().path().to_owned();
                Box::pin(async move {
                    let served = files.oneshot(request).await;
                    let mut response = match served {
                        Ok(r) => r.map(tonic::body::Body::new),
                        Err(never) => match never {},
                    };
                    add_headers(&path, &mut response);
                    Ok(response)
                })
            }
            _ => {
                // The clone is the one made ready; the original stays for the next poll_ready.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move { inner.call(request).await })
            }
        }
    }
}
