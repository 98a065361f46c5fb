//! Shared pieces of the servers' integration tests: a tiny echo upstream for the proxy to sit in
//! front of, and a plain HTTP client that reports timings.
//!
//! Not reused outside these tests.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The size of the body `GET /big` answers with: several frames' worth, so a stall is visible.
pub const BIG_BODY_LEN: usize = 64 * 1024;

/// An upstream that answers every request with `200` and `"{METHOD} {path?query}\n"` followed by
/// the request body, except `GET /big`, which answers `BIG_BODY_LEN` bytes of `x`, and, when
/// started with `with_list_buckets`, `GET /`, which answers that ListBuckets XML.
pub struct EchoUpstream {
    pub address: SocketAddr,
    pub requests: Arc<AtomicU64>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        // Tests drop it inside async code, where a plain runtime drop would panic.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl EchoUpstream {
    pub fn start() -> EchoUpstream {
        EchoUpstream::serve(None)
    }

    /// Also answers `GET /` with `xml` (as `application/xml`), as S3's ListBuckets would.
    pub fn with_list_buckets(xml: &'static str) -> EchoUpstream {
        EchoUpstream::serve(Some(xml))
    }

    fn serve(list_buckets: Option<&'static str>) -> EchoUpstream {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicU64::new(0));
        let counted = requests.clone();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let counted = counted.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        counted.fetch_add(1, Ordering::SeqCst);
                        async move {
                            if let Some(xml) = list_buckets
                                && request.uri().path() == "/"
                                && request.method() == hyper::Method::GET
                            {
                                let mut response = Response::new(Full::new(Bytes::from_static(xml.as_bytes())));
                                response
                                    .headers_mut()
                                    .insert("content-type", "application/xml".parse().unwrap());
                                return Ok::<_, Infallible>(response);
                            }
                            Ok::<_, Infallible>(echo(request).await)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        EchoUpstream {
            address,
            requests,
            runtime: Some(runtime),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }
}

async fn echo(request: Request<Incoming>) -> Response<Full<Bytes>> {
    let head = format!(
        "{} {}\n",
        request.method(),
        request.uri().path_and_query().map_or("/", |pq| pq.as_str())
    );
    if request.uri().path() == "/big" {
        return Response::new(Full::new(Bytes::from(vec![b'x'; BIG_BODY_LEN])));
    }
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut echoed = head.into_bytes();
    echoed.extend_from_slice(&body);
    Response::new(Full::new(Bytes::from(echoed)))
}

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// What a request got back, and when.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: String,
    /// From sending to the response head.
    pub head_after: Duration,
    /// From sending to the end of the body.
    pub total: Duration,
}

pub async fn send(client: &HttpClient, request: Request<Full<Bytes>>) -> Result<Answer, String> {
    let started = Instant::now();
    let response = client.request(request).await.map_err(|e| format!("{e:?}"))?;
    let head_after = started.elapsed();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{e:?}"))?
        .to_bytes();
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        head_after,
        total: started.elapsed(),
    })
}

pub async fn get(client: &HttpClient, url: &str) -> Result<Answer, String> {
    send(client, Request::get(url).body(Full::default()).unwrap()).await
}

pub async fn post(client: &HttpClient, url: &str, body: &str) -> Result<Answer, String> {
    send(
        client,
        Request::post(url)
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap(),
    )
    .await
}

/// The texts between `<tag>` and `</tag>`, in order.
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(open.as_str())
        .skip(1)
        .filter_map(|rest| rest.split_once(close.as_str()).map(|(value, _)| value.to_owned()))
        .collect()
}
