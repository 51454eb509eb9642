//! An S3-compatible bucket through `object_store`'s Amazon S3 client.

use super::spec::S3Spec;
use object_store::aws::{AmazonS3, AmazonS3Builder, S3ConditionalPut};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::{BackoffConfig, ClientOptions, ObjectMeta, ObjectStore, RetryConfig};
use std::time::Duration;

/// Most names one list request asks for (the S3 maximum).
const MAX_KEYS: usize = 1000;

/// The client of one bucket.
pub struct S3Bucket {
    store: AmazonS3,
}

impl S3Bucket {
    /// Builds the client; requests (and their retries) end within
    /// `deadline`.
    pub fn new(spec: &S3Spec, deadline: Duration) -> anyhow::Result<Self> {
        // rustls needs a process-wide crypto provider (already there if a
        // PostgreSQL backend installed it).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&spec.bucket)
            .with_virtual_hosted_style_request(spec.virtual_hosted_style)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(50),
                    max_backoff: deadline / 4,
                    base: 2.0,
                },
                max_retries: 3,
                retry_timeout: deadline,
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(deadline.min(Duration::from_secs(2)))
                    .with_timeout(deadline)
                    .with_pool_max_idle_per_host(64),
            );
        if let Some(endpoint) = &spec.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(region) = &spec.region {
            builder = builder.with_region(region);
        } else if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            builder = builder.with_region("us-east-1");
        }
        if let Some(id) = &spec.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &spec.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        Ok(Self {
            store: builder.build()?,
        })
    }

    /// The client.
    pub fn store(&self) -> &dyn ObjectStore {
        &self.store
    }

    /// ListObjectsV2 pages from `start_after`, until `limit` names.
    pub async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> object_store::Result<Vec<ObjectMeta>> {
        let mut found = Vec::new();
        let mut page_token = None;
        while found.len() < limit {
            let options = PaginatedListOptions {
                offset: start_after.map(str::to_string),
                max_keys: Some((limit - found.len()).min(MAX_KEYS)),
                page_token: page_token.take(),
                ..Default::default()
            };
            let page = self.store.list_paginated(Some(prefix), options).await?;
            found.extend(page.result.objects);
            match page.page_token {
                Some(token) => page_token = Some(token),
                None => break,
            }
        }
        found.truncate(limit);
        Ok(found)
    }
}
