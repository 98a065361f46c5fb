//! The plumbing both test servers share: a listener on 127.0.0.1, its own tokio runtime on a
//! background thread (so a synchronous test can start one without being async), HTTP/1.1 with
//! keep-alive through hyper, and a stop on drop.
//!
//! Not a production server: no TLS, no HTTP/2, no graceful draining. A connection whose client
//! misbehaves only ends that connection; the accept loop never stops for it.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every response the servers send: fixed bytes, a streamed upstream body, or a
/// body that stalls on purpose.
pub type ResponseBody = BoxBody<Bytes, BoxError>;

pub type ResponseFuture = Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send>>;

/// What a server does with one request. Errors are answered as HTTP responses, so there is no
/// error type here: hyper only ever sees a response.
pub trait Handler: Send + Sync + 'static {
    fn handle(self: Arc<Self>, request: Request<Incoming>, connection: ConnectionControl) -> ResponseFuture;
}

/// A handler's grip on the client connection its request came on.
#[derive(Clone)]
pub struct ConnectionControl {
    reset_requested: Arc<Notify>,
}

impl ConnectionControl {
    /// Close the connection with a TCP reset (SO_LINGER 0) instead of a response. The handler's
    /// future is dropped with the connection, so it should just wait after asking.
    pub fn reset(&self) {
        self.reset_requested.notify_one();
    }
}

/// A server listening on 127.0.0.1 until dropped.
pub struct RunningServer {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// Binds a free port before returning, so the caller can connect at once.
    pub fn start<H: Handler>(thread_name: &str, handler: Arc<H>) -> io::Result<RunningServer> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        // Two workers: the dev machine has two cores, and a test process often runs several of
        // these servers next to its own client runtime.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(thread_name)
            .enable_all()
            .build()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(thread_name.to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => {
                            tokio::select! {
                                () = accept_connections(listener, handler) => {}
                                _ = stopped => {}
                            }
                        }
                        Err(error) => eprintln!("nuaws-test-servers: cannot listen: {error}"),
                    }
                });
                // Dropping the runtime cancels every connection task, including bodies stalled forever.
                drop(runtime);
            })?;
        Ok(RunningServer {
            address,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_connections<H: Handler>(listener: TcpListener, handler: Arc<H>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_connection(stream, handler.clone()));
            }
            // Out of file descriptors or a connection aborted while queued: wait a little rather
            // than spin, and keep serving the connections we have.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn serve_connection<H: Handler>(stream: TcpStream, handler: Arc<H>) {
    #[cfg(unix)]
    let raw_fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    let reset_requested = Arc::new(Notify::new());
    let control = ConnectionControl {
        reset_requested: reset_requested.clone(),
    };
    let service = service_fn(move |request| {
        let response = handler.clone().handle(request, control.clone());
        async move { Ok::<_, Infallible>(response.await) }
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).keep_alive(true);
    let mut connection = pin!(builder.serve_connection(TokioIo::new(stream), service));
    tokio::select! {
        // An error here is the client going away or sending garbage: it ends only this connection.
        _ = connection.as_mut() => {}
        () = reset_requested.notified() => {
            #[cfg(unix)]
            {
                // SAFETY: `connection` owns the socket and is still alive here (it is dropped below),
                // so the descriptor is open and still refers to this connection.
                let socket = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw_fd) };
                let _ = socket2::SockRef::from(&socket).set_linger(Some(Duration::ZERO));
            }
        }
    }
    // With SO_LINGER 0, closing the socket now sends a RST: the client sees ECONNRESET.
    drop(connection);
}

/// A complete response with a fixed body.
pub fn fixed_response(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(body.into()).map_err(|never| match never {}).boxed());
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

pub fn empty_body() -> ResponseBody {
    Empty::new().map_err(|never| match never {}).boxed()
}
