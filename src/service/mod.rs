//! The service layer the API and the CLI share, between them and the
//! domain: catalog registration (validate, embed once, persist) and intent
//! extraction against a stored or inline catalog, and the workflow
//! [`tracker`], which drives the store and the drift rules. It holds the
//! extractor once the model is warm, and a cache of embedded catalogs.

pub mod checkpoint;
pub mod ledger;
pub mod tracker;

use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use crate::catalog::{self, Catalog, CatalogError};
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
}

/// Which catalog a request matches against.
#[derive(Debug, Clone)]
pub enum CatalogSource<'a> {
    /// A registered catalog, by name.
    Named(&'a str),
    /// Tools given with the request (MCP `tools` array or any catalog body).
    Inline(&'a Value),
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

    /// Validates, embeds and durably stores a catalog.
    pub async fn register_catalog(
        &self,
        tenant: &str,
        name: &str,
        body: &Value,
    ) -> Result<Arc<LoadedCatalog>, ServiceError> {
        catalog::validate_catalog_name(name)?;
        let catalog = catalog::parse_catalog(body, self.catalog_limits)?;
        let embeddings = self.extractor()?.embed_catalog(&catalog).await?;
        let loaded = Arc::new(LoadedCatalog {
            catalog,
            embeddings,
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
            cache.insert((tenant.into(), name.into()), Arc::clone(&loaded));
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
            })
        };
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(key, Arc::clone(&loaded));
        }
        Ok(loaded)
    }

    /// Validates and embeds tools given inline with a request.
    pub async fn inline_catalog(&self, tools: &Value) -> Result<LoadedCatalog, ServiceError> {
        let body = match tools {
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
        let catalog = catalog::parse_catalog(&body, limits)?;
        let embeddings = self.extractor()?.embed_catalog(&catalog).await?;
        Ok(LoadedCatalog {
            catalog,
            embeddings,
        })
    }

    async fn resolve(
        &self,
        tenant: &str,
        source: &CatalogSource<'_>,
    ) -> Result<Arc<LoadedCatalog>, ServiceError> {
        Ok(match source {
            CatalogSource::Named(name) => self.catalog(tenant, name).await?,
            CatalogSource::Inline(tools) => Arc::new(self.inline_catalog(tools).await?),
        })
    }

    /// Extracts the intent of `prompt` for `subject`.
    pub async fn extract(
        &self,
        tenant: &str,
        subject: Subject,
        prompt: &str,
        source: CatalogSource<'_>,
    ) -> Result<Intent, ServiceError> {
        let extractor = self.extractor()?;
        let loaded = self.resolve(tenant, &source).await?;
        Ok(extractor
            .extract(subject, prompt, &loaded.catalog, &loaded.embeddings)
            .await?)
    }

    /// Extracts the intent of a request and opens a workflow for it;
    /// durable when it returns.
    pub async fn create_workflow(
        &self,
        req: WorkflowRequest<'_>,
    ) -> Result<Workflow, ServiceError> {
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
            CatalogSource::Inline(_) => None,
        };
        Ok(self
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
            .await?)
    }
}
