//! A client of an Orderdock server's own HTTP API: one keep-alive HTTP/1.1
//! connection, reopened when it drops. The e-commerce role reads
//! fulfillment's view of an order through it; the load tool and the crash
//! tests drive a server with it.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Longest one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One HTTP/1.1 connection, reopened when it drops.
#[derive(Debug)]
pub struct Connection {
    authority: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// A response: status and body.
pub type Reply = (StatusCode, Bytes);

impl Connection {
    /// A client of `authority` (`host:port`); it connects on first use.
    pub fn new(authority: &str) -> Connection {
        Connection { authority: authority.to_owned(), sender: None }
    }

    async fn open(authority: &str) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream =
            tokio::net::TcpStream::connect(authority).await.map_err(|e| format!("connect {authority}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// Sends `request` and returns the response as it starts, its body to
    /// be read as it comes (a stream).
    ///
    /// # Errors
    /// A transport failure, described.
    pub async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, String> {
        let mut sender = match self.sender.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => Connection::open(&self.authority).await?,
        };
        sender.ready().await.map_err(|e| e.to_string())?;
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        self.sender = Some(sender);
        Ok(response)
    }

    /// Sends one request and reads the whole answer. An `Err` is a
    /// transport failure or a timeout: the request may or may not have been
    /// handled.
    ///
    /// # Errors
    /// As above, described.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        key: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.authority)
            .header(header::AUTHORIZATION, format!("Bearer {key}"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let bytes = match body {
            Some(value) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(value).map_err(|e| e.to_string())?)
            }
            None => Bytes::new(),
        };
        let request = builder.body(Full::new(bytes)).map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self.send(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok((status, body))
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(result) => result,
            Err(_) => {
                self.sender = None;
                Err(format!("{path}: no answer within {REQUEST_TIMEOUT:?}"))
            }
        }
    }
}
