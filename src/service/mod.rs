//! The service layer the API and the CLI share, between them and the
//! domain: catalog registration (validate, embed once, persist) and intent
//! extraction against a stored or inline catalog, and the workflow
//! [`tracker`], which drives the store and the drift rules. It holds the
//! extractor once the model is warm, and a cache of embedded catalogs.

pub mod checkpoint;
pub mod ledger;
#[cfg(test)]
mod test_support;
pub mod tracker;

use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use crate::catalog::{self, BadEntry, Catalog, CatalogError, Parsed};
use crate::extraction::{CatalogEmbeddings, Extraction, ExtractionError, Extractor};
use crate::intent::{Intent, Object, Subject};
use crate::storage::{StorageError, Store, StoredCatalog};
use crate::workflow::{TokenVerifier, Workflow};
use tracker::{NewWorkflow, Tracker, TrackerConfig, TrackerError};

/// Errors of the service layer.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The model is still loading.
    #[error("the model is loading")]
    NotReady,
    /// No catalog of that name.
    #[error("unknown catalog `{0}`")]
    UnknownCatalog(String),
    /// Too many tools were given inline.
    #[error("{count} inline tools, the limit is {limit}")]
    TooManyInlineTools {
        /// Tools given.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The catalog is invalid.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Extraction failed.
    #[error(transparent)]
    Extraction(#[from] ExtractionError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A blocking task failed.
    #[error("background task: {0}")]
    Task(String),
    /// Tracking failed.
    #[error(transparent)]
    Tracker(#[from] TrackerError),
}

/// Settings of the service.
#[derive(Debug, Clone, Default)]
pub struct ServiceConfig {
    /// Catalog size limits.
    pub catalog_limits: catalog::Limits,
    /// Most tools given inline with a request.
    pub max_inline_tools: usize,
    /// Workflow tracking.
    pub tracker: TrackerConfig,
    /// How delegated tokens are read.
    pub verifier: TokenVerifier,
}

/// A catalog with its embeddings, ready to match against.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedCatalog {
    /// The catalog.
    pub catalog: Catalog,
    /// Its embeddings.
    pub embeddings: CatalogEmbeddings,
    /// Invalid entries left out of it (registration or inline tools with
    /// `skip_invalid`); empty for a catalog read back from the store.
    pub skipped: Vec<BadEntry>,
}

/// Which catalog a request matches against.
#[derive(Debug, Clone)]
pub enum CatalogSource<'a> {
    /// A registered catalog, by name.
    Named(&'a str),
    /// Tools given with the request (MCP `tools` array or any catalog body).
    Inline {
        /// The tools.
        tools: &'a Value,
        /// Leave invalid tools out (and list them) instead of failing.
        skip_invalid: bool,
    },
}

type CacheKey = (String, String);

/// Shared domain state.
pub struct Service {
    store: Arc<dyn Store>,
    extractor: OnceLock<Extractor>,
    cache: RwLock<HashMap<CacheKey, Arc<LoadedCatalog>>>,
    catalog_limits: catalog::Limits,
    max_inline_tools: usize,
    tracker: Tracker,
}

/// What a front-end sends to open a workflow.
#[derive(Debug, Clone)]
pub struct WorkflowRequest<'a> {
    /// Owner.
    pub tenant: &'a str,
    /// The person.
    pub subject: Subject,
    /// The person's request.
    pub prompt: &'a str,
    /// The catalog.
    pub source: CatalogSource<'a>,
    /// Agents allowed to act (empty: any).
    pub allowed_agents: Vec<String>,
    /// Extra context.
    pub context: Option<Object>,
}

impl Service {
    /// A service over `store`; extraction is unavailable until
    /// [`Service::set_extractor`]. Must be created inside a tokio runtime.
    pub fn new(store: Arc<dyn Store>, config: ServiceConfig) -> Self {
        Self {
            tracker: Tracker::new(Arc::clone(&store), config.verifier, config.tracker),
            store,
            extractor: OnceLock::new(),
            cache: RwLock::new(HashMap::new()),
            catalog_limits: config.catalog_limits,
            max_inline_tools: config.max_inline_tools,
        }
    }

    /// The workflow tracker.
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Makes the (warm) extractor available; later calls are ignored.
    pub fn set_extractor(&self, extractor: Extractor) {
        let _ = self.extractor.set(extractor);
    }

    /// Whether the model is loaded and warm.
    pub fn ready(&self) -> bool {
        self.extractor.get().is_some()
    }

    /// The extractor, once ready.
    pub fn extractor(&self) -> Result<&Extractor, ServiceError> {
        self.extractor.get().ok_or(ServiceError::NotReady)
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Validates, embeds and durably stores a catalog; with
    /// `skip_invalid` its invalid entries are left out and listed in
    /// [`LoadedCatalog::skipped`].
    pub async fn register_catalog(
        &self,
        tenant: &str,
        name: &str,
        body: &Value,
        skip_invalid: bool,
    ) -> Result<Arc<LoadedCatalog>, ServiceError> {
        catalog::validate_catalog_name(name)?;
        let Parsed { catalog, skipped } =
            catalog::parse_catalog_with(body, self.catalog_limits, skip_invalid)?;
        let embeddings = self.extractor()?.embed_catalog(&catalog).await?;
        let loaded = Arc::new(LoadedCatalog {
            catalog,
            embeddings,
            skipped,
        });
        let record = StoredCatalog {
            catalog: loaded.catalog.clone(),
            model_sha256: loaded.embeddings.model_sha256.clone(),
            vectors: loaded.embeddings.vectors.clone(),
        };
        let store = Arc::clone(&self.store);
        let (t, n) = (tenant.to_string(), name.to_string());
        tokio::task::spawn_blocking(move || store.put_catalog(&t, &n, &record))
            .await
            .map_err(|e| ServiceError::Task(e.to_string()))??;
        if let Ok(mut cache) = self.cache.write() {
            let cached = LoadedCatalog {
                skipped: vec![],
                ..(*loaded).clone()
            };
            cache.insert((tenant.into(), name.into()), Arc::new(cached));
        }
        Ok(loaded)
    }

    /// A registered catalog; re-embedded (and re-stored) when it was
    /// embedded by another model.
    pub async fn catalog(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Arc<LoadedCatalog>, ServiceError> {
        let key = (tenant.to_string(), name.to_string());
        if let Some(hit) = self.cache.read().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(hit);
        }
        let record = self
            .store
            .get_catalog(tenant, name)?
            .ok_or_else(|| ServiceError::UnknownCatalog(name.to_string()))?;
        let extractor = self.extractor()?;
        let current = &extractor.encoder().meta().sha256;
        let loaded = if &record.model_sha256 == current
            && record.vectors.len() == record.catalog.entries.len()
        {
            Arc::new(LoadedCatalog {
                embeddings: CatalogEmbeddings {
                    model_sha256: record.model_sha256,
                    vectors: record.vectors,
                },
                catalog: record.catalog,
                skipped: vec![],
            })
        } else {
            let embeddings = extractor.embed_catalog(&record.catalog).await?;
            let fresh = StoredCatalog {
                catalog: record.catalog.clone(),
                model_sha256: embeddings.model_sha256.clone(),
                vectors: embeddings.vectors.clone(),
            };
            self.store.put_catalog(tenant, name, &fresh)?;
            Arc::new(LoadedCatalog {
                catalog: record.catalog,
                embeddings,
                skipped: vec![],
            })
        };
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(key, Arc::clone(&loaded));
        }
        Ok(loaded)
    }

    /// Validates and embeds tools given inline with a request: an array of
    /// MCP tools, an array of `tools/list` pages, or any catalog body.
    pub async fn inline_catalog(
        &self,
        tools: &Value,
        skip_invalid: bool,
    ) -> Result<LoadedCatalog, ServiceError> {
        let body = match tools {
            Value::Array(items) if catalog::is_pages(items) => tools.clone(),
            Value::Array(items) => {
                if items.len() > self.max_inline_tools {
                    return Err(ServiceError::TooManyInlineTools {
                        count: items.len(),
                        limit: self.max_inline_tools,
                    });
                }
                serde_json::json!({ "tools": items })
            }
            Value::Null
            | Value::Bool(_)
            | Value::Number(_)
            | Value::String(_)
            | Value::Object(_) => tools.clone(),
        };
        let limits = catalog::Limits {
            max_entries: self.max_inline_tools,
            ..self.catalog_limits
        };
        let Parsed { catalog, skipped } = catalog::parse_catalog_with(&body, limits, skip_invalid)?;
        let embeddings = self.extractor()?.embed_catalog(&catalog).await?;
        Ok(LoadedCatalog {
            catalog,
            embeddings,
            skipped,
        })
    }

    async fn resolve(
        &self,
        tenant: &str,
        source: &CatalogSource<'_>,
    ) -> Result<Arc<LoadedCatalog>, ServiceError> {
        Ok(match source {
            CatalogSource::Named(name) => self.catalog(tenant, name).await?,
            CatalogSource::Inline {
                tools,
                skip_invalid,
            } => Arc::new(self.inline_catalog(tools, *skip_invalid).await?),
        })
    }

    /// Extracts the intent of `prompt` for `subject`, with the inline
    /// tools that were skipped as invalid.
    pub async fn extract(
        &self,
        tenant: &str,
        subject: Subject,
        prompt: &str,
        source: CatalogSource<'_>,
    ) -> Result<(Intent, Vec<BadEntry>), ServiceError> {
        let extractor = self.extractor()?;
        let loaded = self.resolve(tenant, &source).await?;
        let intent = extractor
            .extract(subject, prompt, &loaded.catalog, &loaded.embeddings)
            .await?;
        Ok((intent, loaded.skipped.clone()))
    }

    /// Extracts the intent of a request and opens a workflow for it;
    /// durable when it returns. Also returns the inline tools that were
    /// skipped as invalid.
    pub async fn create_workflow(
        &self,
        req: WorkflowRequest<'_>,
    ) -> Result<(Workflow, Vec<BadEntry>), ServiceError> {
        let extractor = self.extractor()?;
        let loaded = self.resolve(req.tenant, &req.source).await?;
        let Extraction {
            intent,
            entry_scores,
        } = extractor
            .extract_detailed(
                req.subject.clone(),
                req.prompt,
                &loaded.catalog,
                &loaded.embeddings,
            )
            .await?;
        let catalog_name = match req.source {
            CatalogSource::Named(n) => Some(n.to_string()),
            CatalogSource::Inline { .. } => None,
        };
        let workflow = self
            .tracker
            .create(NewWorkflow {
                tenant: req.tenant.to_string(),
                subject: req.subject,
                intent,
                catalog_name,
                catalog: loaded.catalog.clone(),
                entry_scores,
                allowed_agents: req.allowed_agents,
                context: req.context,
            })
            .await?;
        Ok((workflow, loaded.skipped.clone()))
    }
}
