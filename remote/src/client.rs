//! [`Client`]: a blocking client of one REAPI server's Action Cache, CAS and ByteStream.
//!
//! The connection is made on first use, with the server's capabilities (which digest
//! function, how large a batch). Every call is bounded: connecting and small calls by the
//! configured timeout, a ByteStream transfer by that timeout per chunk. Calls that fail in a
//! way a retry may cure (unavailable, resource exhausted, aborted) are retried with
//! exponential backoff, at most [`ATTEMPTS`] times.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use re::action_cache_client::ActionCacheClient;
use re::capabilities_client::CapabilitiesClient;
use re::content_addressable_storage_client::ContentAddressableStorageClient;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::config::Settings;
use crate::digest::{DigestKind, RemoteDigest};
use crate::RemoteError;

/// How many times a call is tried before its error is returned.
pub const ATTEMPTS: u32 = 3;

/// The first pause before a retry; it doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Larger than any message shark expects (a batch read of the server's maximum size).
const MAX_MESSAGE: usize = 64 << 20;

/// What the server said about itself.
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// The digest function in use.
    pub digest: DigestKind,
    /// The largest total of blob bytes in one batch call (never above 4 MiB, gRPC's usual
    /// message limit, less room for the envelope).
    pub max_batch: u64,
    /// Whether the Action Cache accepts updates from clients.
    pub update_enabled: bool,
}

/// An open connection.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) channel: Channel,
    pub(crate) caps: Capabilities,
}

/// A client of one server. Cheap to create: nothing happens until the first call.
#[derive(Debug)]
pub struct Client {
    pub(crate) settings: Settings,
    pub(crate) rt: tokio::runtime::Runtime,
    conn: OnceLock<Result<Conn, String>>,
    token: Option<String>,
}

impl Client {
    /// A client for `settings`. Reads the token file now, so that a missing one is a
    /// configuration error rather than a failure at the first command.
    pub fn new(settings: Settings) -> Result<Client, RemoteError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| RemoteError::Connect {
                url: settings.url.clone(),
                source: Box::new(source),
            })?;
        let token = match &settings.token_file {
            Some(path) => Some(read_credential(path)?.trim().to_owned()),
            None => None,
        };
        Ok(Client {
            settings,
            rt,
            conn: OnceLock::new(),
            token,
        })
    }

    /// The server's URL as configured.
    pub fn url(&self) -> &str {
        &self.settings.url
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The connection, made (with the capabilities call) on first use. A failure is kept:
    /// a server that could not be reached once is not tried again by this client.
    pub(crate) fn conn(&self) -> Result<&Conn, RemoteError> {
        let conn = self.conn.get_or_init(|| {
            self.rt
                .block_on(self.connect())
                .map_err(|e| crate::error_chain(&e))
        });
        conn.as_ref().map_err(|why| RemoteError::Connect {
            url: self.settings.url.clone(),
            source: why.clone().into(),
        })
    }

    /// The server's capabilities (connecting first if needed).
    pub fn capabilities(&self) -> Result<Capabilities, RemoteError> {
        Ok(self.conn()?.caps.clone())
    }

    async fn connect(&self) -> Result<Conn, RemoteError> {
        let s = &self.settings;
        let connect_err = |e: Box<dyn std::error::Error + Send + Sync>| RemoteError::Connect {
            url: s.url.clone(),
            source: e,
        };
        let mut endpoint = Endpoint::from_shared(s.endpoint.clone())
            .map_err(|e| connect_err(Box::new(e)))?
            .connect_timeout(s.timeout)
            // No HTTP/2 keepalive pings: gRPC servers answer frequent ones with GOAWAY
            // ("too many pings"); a dead server is caught by the calls' own timeouts.
            .tcp_nodelay(true);
        if s.tls {
            endpoint = endpoint
                .tls_config(self.tls_config()?)
                .map_err(|e| connect_err(Box::new(e)))?;
        }
        let channel = tokio::time::timeout(s.timeout, endpoint.connect())
            .await
            .map_err(|_| connect_err("timed out".into()))?
            .map_err(|e| connect_err(Box::new(e)))?;
        let caps_client = CapabilitiesClient::new(channel.clone());
        let request = re::GetCapabilitiesRequest {
            instance_name: s.instance.clone(),
        };
        let caps = self
            .retry("GetCapabilities", || {
                let mut c = caps_client.clone();
                let req = self.request(request.clone());
                async move { c.get_capabilities(req).await }
            })
            .await?;
        let cache = caps.cache_capabilities.unwrap_or_default();
        let digest =
            DigestKind::choose(&cache.digest_functions).ok_or(RemoteError::NoDigestFunction)?;
        let server_max = u64::try_from(cache.max_batch_total_size_bytes).unwrap_or(0);
        let limit = 4 << 20;
        let max_batch = match server_max {
            0 => limit,
            n => n.min(limit),
        } - (64 << 10);
        let update_enabled = cache
            .action_cache_update_capabilities
            .is_none_or(|u| u.update_enabled);
        Ok(Conn {
            channel,
            caps: Capabilities {
                digest,
                max_batch,
                update_enabled,
            },
        })
    }

    fn tls_config(&self) -> Result<tonic::transport::ClientTlsConfig, RemoteError> {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let s = &self.settings;
        let mut tls = ClientTlsConfig::new();
        tls = match &s.ca_file {
            Some(ca) => tls.ca_certificate(Certificate::from_pem(read_credential(ca)?)),
            None => tls.with_native_roots(),
        };
        if let Some((cert, key)) = &s.client_identity {
            tls = tls.identity(Identity::from_pem(
                read_credential(cert)?,
                read_credential(key)?,
            ));
        }
        Ok(tls)
    }

    /// A request carrying `msg` and the credentials.
    pub(crate) fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Some(token) = &self.token {
            if let Ok(value) = format!("Bearer {token}").parse() {
                req.metadata_mut().insert("authorization", value);
            }
        }
        req
    }

    /// Runs `call` with the timeout, retrying what a retry may cure.
    pub(crate) async fn retry<T, F, Fut>(
        &self,
        name: &'static str,
        mut call: F,
    ) -> Result<T, RemoteError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut pause = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let status = match tokio::time::timeout(self.settings.timeout, call()).await {
                Ok(Ok(response)) => return Ok(response.into_inner()),
                Ok(Err(status)) => status,
                // A slow server is not retried: that would only multiply the wait.
                Err(_) => Status::deadline_exceeded(format!(
                    "no answer within {} s",
                    self.settings.timeout.as_secs()
                )),
            };
            // A connection the server closed while shark was busy elsewhere fails the next
            // call with a transport error; the retry reconnects.
            let transport = std::error::Error::source(&status)
                .is_some_and(|e| e.is::<tonic::transport::Error>());
            let transient = transport
                || matches!(
                    status.code(),
                    Code::Unavailable | Code::ResourceExhausted | Code::Aborted
                );
            if !transient || attempt == ATTEMPTS {
                return Err(RemoteError::Call {
                    call: name,
                    status: Box::new(status),
                });
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
        unreachable!("the last attempt returns")
    }

    fn caps(&self) -> Result<(&Conn, DigestKind), RemoteError> {
        let conn = self.conn()?;
        Ok((conn, conn.caps.digest))
    }

    /// The Action Cache entry of `action`, or `None` if there is none.
    pub fn get_action_result(
        &self,
        action: &RemoteDigest,
    ) -> Result<Option<re::ActionResult>, RemoteError> {
        let (conn, kind) = self.caps()?;
        let client =
            ActionCacheClient::new(conn.channel.clone()).max_decoding_message_size(MAX_MESSAGE);
        let request = re::GetActionResultRequest {
            instance_name: self.settings.instance.clone(),
            action_digest: Some(action.proto()),
            digest_function: kind.proto(),
            ..Default::default()
        };
        let result = self.rt.block_on(self.retry("GetActionResult", || {
            let mut c = client.clone();
            let req = self.request(request.clone());
            async move { c.get_action_result(req).await }
        }));
        match result {
            Ok(r) => Ok(Some(r)),
            Err(RemoteError::Call { status, .. }) if status.code() == Code::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets the Action Cache entry of `action`.
    pub fn update_action_result(
        &self,
        action: &RemoteDigest,
        result: re::ActionResult,
    ) -> Result<(), RemoteError> {
        let (conn, kind) = self.caps()?;
        let client = ActionCacheClient::new(conn.channel.clone());
        let request = re::UpdateActionResultRequest {
            instance_name: self.settings.instance.clone(),
            action_digest: Some(action.proto()),
            action_result: Some(result),
            digest_function: kind.proto(),
            ..Default::default()
        };
        self.rt
            .block_on(self.retry("UpdateActionResult", || {
                let mut c = client.clone();
                let req = self.request(request.clone());
                async move { c.update_action_result(req).await }
            }))
            .map(|_| ())
    }

    /// Which of `digests` the CAS does not hold.
    pub fn find_missing(&self, digests: &[RemoteDigest]) -> Result<Vec<RemoteDigest>, RemoteError> {
        if digests.is_empty() {
            return Ok(Vec::new());
        }
        let (conn, kind) = self.caps()?;
        let client = cas_client(conn);
        let request = re::FindMissingBlobsRequest {
            instance_name: self.settings.instance.clone(),
            blob_digests: digests.iter().map(RemoteDigest::proto).collect(),
            digest_function: kind.proto(),
        };
        let response = self.rt.block_on(self.retry("FindMissingBlobs", || {
            let mut c = client.clone();
            let req = self.request(request.clone());
            async move { c.find_missing_blobs(req).await }
        }))?;
        response
            .missing_blob_digests
            .iter()
            .map(|d| {
                RemoteDigest::from_proto(d, kind).ok_or_else(|| RemoteError::Malformed {
                    what: "digest in FindMissingBlobs".into(),
                })
            })
            .collect()
    }

    /// Uploads small blobs in one call (their total must fit [`Capabilities::max_batch`]).
    pub fn batch_update(&self, blobs: Vec<(RemoteDigest, Vec<u8>)>) -> Result<(), RemoteError> {
        if blobs.is_empty() {
            return Ok(());
        }
        let (conn, kind) = self.caps()?;
        let client = cas_client(conn);
        let request = re::BatchUpdateBlobsRequest {
            instance_name: self.settings.instance.clone(),
            requests: blobs
                .into_iter()
                .map(|(d, data)| re::batch_update_blobs_request::Request {
                    digest: Some(d.proto()),
                    data,
                    ..Default::default()
                })
                .collect(),
            digest_function: kind.proto(),
        };
        let response = self.rt.block_on(self.retry("BatchUpdateBlobs", || {
            let mut c = client.clone();
            let req = self.request(request.clone());
            async move { c.batch_update_blobs(req).await }
        }))?;
        for r in response.responses {
            let status = r.status.unwrap_or_default();
            if status.code != 0 {
                return Err(RemoteError::Call {
                    call: "BatchUpdateBlobs",
                    status: Box::new(Status::new(Code::from(status.code), status.message)),
                });
            }
        }
        Ok(())
    }

    /// Downloads small blobs in one call, each checked against its digest. A blob the server
    /// does not have is left out; one whose content does not match is an error.
    pub fn batch_read(
        &self,
        digests: &[RemoteDigest],
    ) -> Result<Vec<(RemoteDigest, Vec<u8>)>, RemoteError> {
        if digests.is_empty() {
            return Ok(Vec::new());
        }
        let (conn, kind) = self.caps()?;
        let client = cas_client(conn);
        let request = re::BatchReadBlobsRequest {
            instance_name: self.settings.instance.clone(),
            digests: digests.iter().map(RemoteDigest::proto).collect(),
            digest_function: kind.proto(),
            ..Default::default()
        };
        let response = self.rt.block_on(self.retry("BatchReadBlobs", || {
            let mut c = client.clone();
            let req = self.request(request.clone());
            async move { c.batch_read_blobs(req).await }
        }))?;
        let mut out = Vec::new();
        for r in response.responses {
            let found = r.status.as_ref().is_none_or(|s| s.code == 0);
            let Some(digest) = r
                .digest
                .as_ref()
                .and_then(|d| RemoteDigest::from_proto(d, kind))
            else {
                continue;
            };
            if !found || !digests.contains(&digest) {
                continue;
            }
            if kind.of_bytes(&r.data) != digest {
                return Err(RemoteError::Corrupt {
                    digest: digest.to_string(),
                });
            }
            out.push((digest, r.data));
        }
        Ok(out)
    }
}

fn cas_client(conn: &Conn) -> ContentAddressableStorageClient<Channel> {
    ContentAddressableStorageClient::new(conn.channel.clone())
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE)
}

fn read_credential(path: &std::path::Path) -> Result<String, RemoteError> {
    std::fs::read_to_string(path).map_err(|source| RemoteError::Credential {
        path: path.to_owned(),
        source,
    })
}
