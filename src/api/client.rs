//! A small client of the REST API for the command line (`outdial agent pause …`).

use anyhow::Context;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Where the API is and the token to use.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// A client of the API at `base` (`http://127.0.0.1:8080`) with bearer `token`.
    pub fn new(base: &str, token: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// `GET path` (e.g. `/v1/agents`). Errors: connection failures, and any non-2xx answer
    /// as its problem detail.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("GET {}{path}", self.base))?;
        Self::read(r).await
    }

    /// `POST path` with a JSON body. Errors: as [`ApiClient::get`].
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.send(reqwest::Method::POST, path, body).await
    }

    /// `PUT path` with a JSON body. Errors: as [`ApiClient::get`].
    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.send(reqwest::Method::PUT, path, body).await
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let r = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("{method} {}{path}", self.base))?;
        Self::read(r).await
    }

    async fn read<T: DeserializeOwned>(r: reqwest::Response) -> anyhow::Result<T> {
        let status = r.status();
        let body = r.bytes().await?;
        if !status.is_success() {
            let detail = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["detail"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            anyhow::bail!("{status}: {detail}");
        }
        serde_json::from_slice(&body).context("reading the API's answer")
    }
}
