//! The job store on DynamoDB: one item per job, transitions as conditional
//! `UpdateItem`s built from the transition's guard and field changes, and the
//! `by_owner`, `by_search`, `by_hash` and `by_pending` indexes for listings,
//! search, dedup and the sweeper. Every attribute is named by `JobField`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::AwsCallError;
use crate::domain::{
    FieldChange, Guard, Job, JobField, JobId, JobStatus, Owner, PENDING, Sha256Hex, Timestamp,
    Transition, TransitionRefused, WebhookState,
};
use crate::ports::{JobPage, JobStore, ListQuery, PendingCursor, PendingPage, StoreError};

/// GSI (owner, created_at): an owner's jobs, newest first.
pub const INDEX_BY_OWNER: &str = "by_owner";
/// GSI (owner_sha256, created_at): the same owner's jobs with the same bytes.
pub const INDEX_BY_HASH: &str = "by_hash";

/// What `by_owner` projects besides its keys: what a listing shows and a job
/// needs to be read (`JobField::listed`), never the text (a listing would
/// otherwise read up to 256 KiB per job).
pub fn by_owner_attributes() -> Vec<JobField> {
    JobField::ALL
        .iter()
        .copied()
        .filter(|field| field.listed())
        .collect()
}
/// GSI (pending, updated_at), keys only and sparse: the unfinished jobs,
/// oldest change first, for the sweeper.
pub const INDEX_BY_PENDING: &str = "by_pending";

/// GSI (owner, search_at), sparse: the jobs with text, newest first, for
/// search. `search_at` is `created_at` again, set only with `search_text`.
pub const INDEX_BY_SEARCH: &str = "by_search";

/// What `by_search` projects besides its keys: what its filter reads. Hits
/// are then read whole from the table (their text gives the snippet).
pub const BY_SEARCH_ATTRIBUTES: &[JobField] = &[
    JobField::SearchText,
    JobField::Status,
    JobField::DocumentType,
    JobField::ExpiresAt,
    JobField::NeedsReview,
];

/// What `by_hash` projects besides its keys: enough to pick a match, which is
/// then read whole from the table.
pub const BY_HASH_ATTRIBUTES: &[JobField] = &[JobField::Status, JobField::ExpiresAt];

const MAX_PAGE: u32 = 100;
/// Index items one search round reads by default (DynamoDB stops sooner, at 1 MB).
const SEARCH_SCAN: i32 = 1000;
/// The table's key attribute.
const PRIMARY_KEY: JobField = JobField::JobId;
/// How many index pages one list or dedup call reads at most before it
/// returns what it has (and a cursor): bounds the cost of a sparse filter.
const MAX_ROUNDS: usize = 10;

/// The `Jobs` table. Every status change is one conditional `UpdateItem`.
pub struct DynamoJobStore {
    client: Client,
    table: String,
    /// Index items one search round reads.
    search_scan: i32,
}

impl DynamoJobStore {
    /// Over the table `table`, with a client of the shared SDK configuration.
    pub fn connect(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), table)
    }

    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            search_scan: SEARCH_SCAN,
        }
    }

    /// Reads `items` index items per search round instead of a full page: a
    /// request then covers fewer jobs (tests use it to reach empty pages).
    pub fn with_search_scan(mut self, items: i32) -> Self {
        self.search_scan = items.max(1);
        self
    }
}

impl DynamoJobStore {
    /// Sets one field of an existing job, outside any status transition.
    async fn set_field(
        &self,
        id: &JobId,
        field: JobField,
        value: AttributeValue,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PRIMARY_KEY.as_str(), text(id.as_str()))
            .update_expression("SET #field = :value")
            .condition_expression("attribute_exists(#key)")
            .expression_attribute_names("#field", field.as_str())
            .expression_attribute_names("#key", PRIMARY_KEY.as_str())
            .expression_attribute_values(":value", value)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(StoreError::NotFound(id.clone()))
            }
            Err(SdkError::ServiceError(e)) if is_item_too_large(e.err().meta().message()) => {
                Err(StoreError::ItemTooLarge(id.clone()))
            }
            Err(e) => Err(StoreError::backend(AwsCallError::new("UpdateItem", &e))),
        }
    }
}

fn to_item(job: &Job) -> Result<HashMap<String, AttributeValue>, StoreError> {
    serde_dynamo::to_item(job).map_err(StoreError::backend)
}

fn from_item(item: HashMap<String, AttributeValue>) -> Result<Job, StoreError> {
    serde_dynamo::from_item(item).map_err(StoreError::backend)
}

/// DynamoDB's ValidationException for an item over 400 KB (after an update too).
fn is_item_too_large(message: Option<&str>) -> bool {
    message
        .is_some_and(|m| m.contains("Item size") && m.contains("exceeded the maximum allowed size"))
}

fn text(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

/// The `by_pending` index's key of the job a sweeper's page ended at: where
/// the next page's query starts.
fn pending_key(cursor: &PendingCursor) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (JobField::Pending.as_str().to_owned(), text(PENDING)),
        (
            JobField::UpdatedAt.as_str().to_owned(),
            AttributeValue::N(cursor.updated_at.as_millis().to_string()),
        ),
        (
            PRIMARY_KEY.as_str().to_owned(),
            text(cursor.job_id.as_str()),
        ),
    ])
}

/// The cursor of a `by_pending` query's last evaluated key; `None` for a key
/// this table would not have written.
fn pending_cursor(key: &HashMap<String, AttributeValue>) -> Option<PendingCursor> {
    let updated_at = key
        .get(JobField::UpdatedAt.as_str())?
        .as_n()
        .ok()?
        .parse()
        .ok()?;
    let job_id = job_id_of(key)?;
    Some(PendingCursor {
        updated_at: Timestamp::from_millis(updated_at),
        job_id,
    })
}

/// Expression placeholders, named as they are used so that none goes unused.
#[derive(Default)]
struct Expression {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expression {
    fn name(&mut self, field: JobField) -> String {
        let placeholder = format!("#{field}");
        self.names
            .insert(placeholder.clone(), field.as_str().to_owned());
        placeholder
    }

    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// Items still within their retention: the TTL attribute lies in the future.
    fn unexpired(&mut self, now: Timestamp) -> String {
        let at = self.value(AttributeValue::N(now.as_epoch_seconds().to_string()));
        format!("{} > {at}", self.name(JobField::ExpiresAt))
    }

    fn update(&mut self, changes: &[FieldChange]) -> Result<String, StoreError> {
        let mut set = Vec::new();
        let mut remove = Vec::new();
        for change in changes {
            match change {
                FieldChange::Set(field, value) => {
                    let value =
                        serde_dynamo::to_attribute_value(value).map_err(StoreError::backend)?;
                    set.push(format!("{} = {}", self.name(*field), self.value(value)));
                }
                FieldChange::Increment(field, by) => {
                    let name = self.name(*field);
                    let zero = self.value(AttributeValue::N("0".into()));
                    let by = self.value(AttributeValue::N(by.to_string()));
                    set.push(format!("{name} = if_not_exists({name}, {zero}) + {by}"));
                }
                FieldChange::Remove(field) => remove.push(self.name(*field)),
                FieldChange::Copy(field, from) => {
                    set.push(format!("{} = {}", self.name(*field), self.name(*from)));
                }
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        Ok(expression)
    }

    fn guard(&mut self, guard: Guard) -> String {
        let status = self.name(JobField::Status);
        match guard {
            Guard::Status(expected) => {
                format!("{status} = {}", self.value(text(expected.as_str())))
            }
            Guard::LeaseExpired { now } => {
                let processing = self.value(text(JobStatus::Processing.as_str()));
                let lease = self.name(JobField::LeaseUntil);
                let now = self.value(AttributeValue::N(now.as_millis().to_string()));
                format!(
                    "{status} = {processing} AND (attribute_not_exists({lease}) OR {lease} < {now})"
                )
            }
            Guard::UploadExpired { now } => {
                let awaiting = self.value(text(JobStatus::AwaitingUpload.as_str()));
                let deadline = self.name(JobField::UploadExpiresAt);
                let now = self.value(AttributeValue::N(now.as_millis().to_string()));
                format!("{status} = {awaiting} AND {deadline} < {now}")
            }
            Guard::LeaseHeld { attempt } => {
                let processing = self.value(text(JobStatus::Processing.as_str()));
                let attempts = self.name(JobField::Attempts);
                let attempt = self.value(AttributeValue::N(attempt.to_string()));
                format!("{status} = {processing} AND {attempts} = {attempt}")
            }
        }
    }
}

/// The key of the last job of a page: the listing's opaque cursor. A
/// listing's carries `created_at`, a search's `search_at`.
#[derive(Serialize, Deserialize)]
struct CursorKey {
    job_id: JobId,
    owner: Owner,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    search_at: Option<Timestamp>,
}

fn encode_cursor(key: HashMap<String, AttributeValue>) -> Result<String, StoreError> {
    let key: CursorKey = serde_dynamo::from_item(key).map_err(StoreError::backend)?;
    let json = serde_json::to_vec(&key).expect("a cursor key always serialises");
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// The index key a cursor stands for, if it is one this owner's listing
/// (`searching` or not) handed out.
fn decode_cursor(
    cursor: &str,
    owner: &Owner,
    searching: bool,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let json = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| StoreError::BadCursor)?;
    let key: CursorKey = serde_json::from_slice(&json).map_err(|_| StoreError::BadCursor)?;
    // A cursor from another owner's listing must not open a window onto it.
    if &key.owner != owner {
        return Err(StoreError::BadCursor);
    }
    let of_this_index = if searching {
        key.search_at.is_some() && key.created_at.is_none()
    } else {
        key.created_at.is_some() && key.search_at.is_none()
    };
    if !of_this_index {
        return Err(StoreError::BadCursor);
    }
    serde_dynamo::to_item(key).map_err(StoreError::backend)
}

impl DynamoJobStore {
    /// The jobs with these ids, whole and in this order; those deleted or
    /// expired meanwhile are left out.
    async fn read_whole(&self, ids: Vec<JobId>) -> Result<Vec<Job>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<HashMap<String, AttributeValue>> = ids
            .iter()
            .map(|id| HashMap::from([(PRIMARY_KEY.as_str().to_owned(), text(id.as_str()))]))
            .collect();
        let mut pending = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .build()
                .map_err(StoreError::backend)?,
        );
        let mut found: HashMap<JobId, Job> = HashMap::new();
        for round in 0..MAX_ROUNDS {
            let Some(request) = pending.take() else { break };
            if round > 0 {
                // Unprocessed keys mean throttling: back off before asking again.
                tokio::time::sleep(std::time::Duration::from_millis(50 << round)).await;
            }
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| StoreError::backend(AwsCallError::new("BatchGetItem", &e)))?;
            let items = output
                .responses
                .and_then(|mut tables| tables.remove(&self.table))
                .unwrap_or_default();
            for item in items {
                let job = from_item(item)?;
                found.insert(job.job_id.clone(), job);
            }
            pending = output
                .unprocessed_keys
                .and_then(|mut tables| tables.remove(&self.table))
                .filter(|left| !left.keys().is_empty());
        }
        if pending.is_some() {
            return Err(StoreError::backend(AwsCallError {
                operation: "BatchGetItem",
                detail: "keys were left unprocessed after every retry".into(),
            }));
        }
        let now = Timestamp::now();
        Ok(ids
            .into_iter()
            .filter_map(|id| found.remove(&id))
            .filter(|job| !job.is_expired(now))
            .collect())
    }
}

/// The job id an index item is keyed by; `None` for an item without one.
fn job_id_of(item: &HashMap<String, AttributeValue>) -> Option<JobId> {
    let id = item.get(PRIMARY_KEY.as_str())?.as_s().ok()?;
    JobId::parse(id).ok()
}

/// How a guard is written in a condition with others: DynamoDB refuses
/// redundant parentheses, so only a compound one gets them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Grouping {
    /// One comparison: `a = b`.
    Simple,
    /// Comparisons joined by AND: parenthesised among alternatives.
    Compound,
}

impl Grouping {
    fn of(guard: Guard) -> Self {
        match guard {
            Guard::Status(_) => Grouping::Simple,
            Guard::LeaseExpired { .. } | Guard::LeaseHeld { .. } | Guard::UploadExpired { .. } => {
                Grouping::Compound
            }
        }
    }
}

impl Expression {
    /// The update's condition: the job exists, and any one of `guards` holds.
    fn condition_for(&mut self, guards: &[Guard]) -> String {
        let written: Vec<(String, Grouping)> = guards
            .iter()
            .map(|guard| (self.guard(*guard), Grouping::of(*guard)))
            .collect();
        let job_id = self.name(PRIMARY_KEY);
        match written.as_slice() {
            [(only, _)] => format!("attribute_exists({job_id}) AND {only}"),
            many => {
                let alternatives: Vec<String> = many
                    .iter()
                    .map(|(guard, grouping)| match grouping {
                        Grouping::Compound => format!("({guard})"),
                        Grouping::Simple => guard.clone(),
                    })
                    .collect();
                format!(
                    "attribute_exists({job_id}) AND ({})",
                    alternatives.join(" OR ")
                )
            }
        }
    }

    /// The key condition of a listing's query: the owner, and the creation
    /// times asked for on the index's sort key.
    fn listing_key(&mut self, owner: &Owner, listing: Listing, range: CreatedRange) -> String {
        let mut key = format!(
            "{} = {}",
            self.name(JobField::Owner),
            self.value(text(owner.as_str()))
        );
        let millis = |at: i64| AttributeValue::N(at.to_string());
        let bounds = match (range.after, range.before) {
            (Some(after), Some(before)) => Some(format!(
                "BETWEEN {} AND {}",
                self.value(millis(after)),
                self.value(millis(before))
            )),
            (Some(after), None) => Some(format!(">= {}", self.value(millis(after)))),
            (None, Some(before)) => Some(format!("<= {}", self.value(millis(before)))),
            (None, None) => None,
        };
        if let Some(bounds) = bounds {
            key.push_str(&format!(" AND {} {bounds}", self.name(listing.sort_key())));
        }
        key
    }

    /// The filter of a listing's query: unexpired, and every filter asked for.
    fn listing_filter(&mut self, query: &ListQuery) -> String {
        let mut filter = self.unexpired(Timestamp::now());
        if let Some(status) = query.status {
            let field = self.name(JobField::Status);
            let value = self.value(text(status.as_str()));
            filter.push_str(&format!(" AND {field} = {value}"));
        }
        if let Some(kind) = query.document_type {
            let field = self.name(JobField::DocumentType);
            let value = self.value(text(kind.as_str()));
            filter.push_str(&format!(" AND {field} = {value}"));
        }
        if let Some(wanted) = query.needs_review {
            let flag = self.name(JobField::NeedsReview);
            let yes = self.value(AttributeValue::Bool(true));
            if wanted {
                filter.push_str(&format!(" AND {flag} = {yes}"));
            } else {
                // Jobs written before the flag existed carry none.
                filter.push_str(&format!(
                    " AND (attribute_not_exists({flag}) OR {flag} <> {yes})"
                ));
            }
        }
        if let Some(search) = &query.search {
            let field = self.name(JobField::SearchText);
            let value = self.value(text(search.as_str()));
            filter.push_str(&format!(" AND contains({field}, {value})"));
        }
        filter
    }
}

/// Which index a listing reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listing {
    /// `by_owner`: every job, projected without its text.
    Owner,
    /// `by_search`: the sparse index of jobs with text; hits are read whole.
    Search,
}

impl Listing {
    fn of(query: &ListQuery) -> Self {
        if query.search.is_some() {
            Listing::Search
        } else {
            Listing::Owner
        }
    }

    fn searching(self) -> bool {
        self == Listing::Search
    }

    fn index(self) -> &'static str {
        match self {
            Listing::Owner => INDEX_BY_OWNER,
            Listing::Search => INDEX_BY_SEARCH,
        }
    }

    /// Both indexes sort as a listing does, by creation.
    fn sort_key(self) -> JobField {
        match self {
            Listing::Owner => JobField::CreatedAt,
            Listing::Search => JobField::SearchAt,
        }
    }

    /// The index key of `item`: where the next page starts after it.
    fn cursor_at(self, item: &HashMap<String, AttributeValue>) -> HashMap<String, AttributeValue> {
        [PRIMARY_KEY, JobField::Owner, self.sort_key()]
            .iter()
            .filter_map(|field| {
                let value = item.get(field.as_str())?.clone();
                Some((field.as_str().to_owned(), value))
            })
            .collect()
    }
}

/// A listing's creation times, in epoch milliseconds, both ends included.
#[derive(Clone, Copy)]
struct CreatedRange {
    after: Option<i64>,
    before: Option<i64>,
}

impl CreatedRange {
    /// The range `query` asks for; `None` when it holds no instant at all.
    fn of(query: &ListQuery) -> Option<Self> {
        let range = Self {
            after: query.created_after.map(Timestamp::as_millis),
            // `created_before` excludes its own instant.
            before: query.created_before.map(|at| at.as_millis() - 1),
        };
        match (range.after, range.before) {
            (Some(after), Some(before)) if after > before => None,
            _ => Some(range),
        }
    }
}

impl DynamoJobStore {
    /// One query of a listing from `start`: the items it found and where the
    /// index goes on. A listing asks for no more than are still missing
    /// (`remaining`), which keeps the cursor exact under a filter; a search
    /// scans a full page, since a rare phrase may match one job in thousands.
    async fn list_round(
        &self,
        owner: &Owner,
        query: &ListQuery,
        listing: Listing,
        range: CreatedRange,
        remaining: usize,
        start: Option<HashMap<String, AttributeValue>>,
    ) -> Result<Items, StoreError> {
        let mut expression = Expression::default();
        let key = expression.listing_key(owner, listing, range);
        let filter = expression.listing_filter(query);
        let asked = match listing {
            Listing::Search => self.search_scan,
            Listing::Owner => remaining as i32,
        };
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(listing.index())
            .key_condition_expression(key)
            .filter_expression(filter)
            .set_expression_attribute_names(Some(expression.names))
            .set_expression_attribute_values(Some(expression.values))
            .scan_index_forward(false)
            .limit(asked)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| StoreError::backend(AwsCallError::new("Query", &e)))?;
        Ok((output.items.unwrap_or_default(), output.last_evaluated_key))
    }

    /// The listing's jobs from its index items: as projected, or for a
    /// search (whose index holds what its filter reads) read whole.
    async fn listed_jobs(
        &self,
        listing: Listing,
        items: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<Vec<Job>, StoreError> {
        match listing {
            Listing::Owner => items.into_iter().map(from_item).collect(),
            Listing::Search => {
                let ids = items
                    .iter()
                    .map(|item| {
                        job_id_of(item).ok_or_else(|| {
                            StoreError::backend(AwsCallError {
                                operation: "Query",
                                detail: "an index item without its job_id".into(),
                            })
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                self.read_whole(ids).await
            }
        }
    }

    /// Why a conditional update was refused: the job is gone, or stands
    /// where the move cannot start (`current`, as DynamoDB returned it, or read).
    async fn refused(
        &self,
        id: &JobId,
        transition: &Transition,
        current: Option<HashMap<String, AttributeValue>>,
    ) -> Result<StoreError, StoreError> {
        let current = match current {
            Some(item) => Some(from_item(item)?),
            None => self.get(id).await?,
        };
        Ok(match current {
            None => StoreError::NotFound(id.clone()),
            Some(job) => StoreError::Refused(TransitionRefused {
                job_id: id.clone(),
                current: job.status,
                attempted: transition.target(),
                job: Some(Box::new(job)),
            }),
        })
    }
}

/// A query's items and the key it stopped at.
type Items = (
    Vec<HashMap<String, AttributeValue>>,
    Option<HashMap<String, AttributeValue>>,
);

#[async_trait]
impl JobStore for DynamoJobStore {
    #[instrument(skip(self, job), fields(job_id = %job.job_id))]
    async fn create(&self, job: &Job) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(job)?))
            .condition_expression(format!("attribute_not_exists({PRIMARY_KEY})"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(StoreError::AlreadyExists(job.job_id.clone()))
            }
            Err(e) => Err(StoreError::backend(AwsCallError::new("PutItem", &e))),
        }
    }

    #[instrument(skip(self), fields(job_id = %id))]
    async fn get(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PRIMARY_KEY.as_str(), text(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::backend(AwsCallError::new("GetItem", &e)))?;
        let job = output.item.map(from_item).transpose()?;
        Ok(job.filter(|job| !job.is_expired(Timestamp::now())))
    }

    #[instrument(skip(self, transition), fields(job_id = %id, to = %transition.target()))]
    async fn transition(
        &self,
        id: &JobId,
        transition: &Transition,
        now: Timestamp,
    ) -> Result<Job, StoreError> {
        let mut expression = Expression::default();
        let update = expression.update(&transition.changes(now))?;
        let condition = expression.condition_for(&transition.guards(now));
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PRIMARY_KEY.as_str(), text(id.as_str()))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(expression.names))
            .set_expression_attribute_values(Some(expression.values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => from_item(output.attributes.unwrap_or_default()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                let current = match e.into_err() {
                    UpdateItemError::ConditionalCheckFailedException(failed) => failed.item,
                    _ => None,
                };
                Err(self.refused(id, transition, current).await?)
            }
            Err(SdkError::ServiceError(e)) if is_item_too_large(e.err().meta().message()) => {
                Err(StoreError::ItemTooLarge(id.clone()))
            }
            Err(e) => Err(StoreError::backend(AwsCallError::new("UpdateItem", &e))),
        }
    }

    #[instrument(skip(self, query), fields(owner = %owner, limit = query.limit))]
    async fn list_by_owner(&self, owner: &Owner, query: &ListQuery) -> Result<JobPage, StoreError> {
        let limit = query.limit.clamp(1, MAX_PAGE) as usize;
        let listing = Listing::of(query);
        let Some(range) = CreatedRange::of(query) else {
            return Ok(JobPage {
                jobs: Vec::new(),
                next_cursor: None,
            });
        };
        let mut start = query
            .cursor
            .as_deref()
            .map(|cursor| decode_cursor(cursor, owner, listing.searching()))
            .transpose()?;
        let mut items = Vec::with_capacity(limit);
        for _ in 0..MAX_ROUNDS {
            let remaining = limit - items.len();
            let (found, next) = self
                .list_round(owner, query, listing, range, remaining, start.take())
                .await?;
            start = next;
            if found.len() > remaining {
                // A search scans a full page: its cursor is cut at the last hit it keeps.
                let kept: Vec<_> = found.into_iter().take(remaining).collect();
                start = kept.last().map(|last| listing.cursor_at(last));
                items.extend(kept);
                break;
            }
            items.extend(found);
            if items.len() >= limit || start.is_none() {
                break;
            }
        }
        let jobs = self.listed_jobs(listing, items).await?;
        let next_cursor = start.map(encode_cursor).transpose()?;
        Ok(JobPage { jobs, next_cursor })
    }

    #[instrument(skip(self, sha256), fields(owner = %owner))]
    async fn find_completed_by_hash(
        &self,
        owner: &Owner,
        sha256: &Sha256Hex,
    ) -> Result<Option<Job>, StoreError> {
        let digest = crate::domain::DedupKey {
            owner: owner.clone(),
            sha256: sha256.clone(),
        };
        let mut start = None;
        for _ in 0..MAX_ROUNDS {
            let mut expression = Expression::default();
            let key = format!(
                "{} = {}",
                expression.name(JobField::OwnerSha256),
                expression.value(text(&digest.index_value()))
            );
            let filter = format!(
                "{} AND {} = {}",
                expression.unexpired(Timestamp::now()),
                expression.name(JobField::Status),
                expression.value(text(JobStatus::Completed.as_str()))
            );
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(INDEX_BY_HASH)
                .key_condition_expression(key)
                .filter_expression(filter)
                .set_expression_attribute_names(Some(expression.names))
                .set_expression_attribute_values(Some(expression.values))
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::backend(AwsCallError::new("Query", &e)))?;
            for item in output.items.unwrap_or_default() {
                let Some(id) = job_id_of(&item) else {
                    continue;
                };
                // The index holds keys only: the job is read whole, and checked
                // again, since it may have moved on since the index saw it.
                if let Some(job) = self.get(&id).await?
                    && job.status == JobStatus::Completed
                    && &job.owner == owner
                    && job.sha256() == Some(sha256)
                {
                    return Ok(Some(job));
                }
            }
            start = output.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(None)
    }

    #[instrument(skip(self))]
    async fn unfinished_before(
        &self,
        before: Timestamp,
        after: Option<&PendingCursor>,
        limit: u32,
    ) -> Result<PendingPage, StoreError> {
        let mut expression = Expression::default();
        let key = format!(
            "{} = {} AND {} < {}",
            expression.name(JobField::Pending),
            expression.value(text(PENDING)),
            expression.name(JobField::UpdatedAt),
            expression.value(AttributeValue::N(before.as_millis().to_string())),
        );
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(INDEX_BY_PENDING)
            .key_condition_expression(key)
            .set_expression_attribute_names(Some(expression.names))
            .set_expression_attribute_values(Some(expression.values))
            .scan_index_forward(true)
            .limit(limit.max(1) as i32)
            .set_exclusive_start_key(after.map(pending_key))
            .send()
            .await
            .map_err(|e| StoreError::backend(AwsCallError::new("Query", &e)))?;
        let next = output.last_evaluated_key.as_ref().and_then(pending_cursor);
        let mut jobs = Vec::new();
        for item in output.items.unwrap_or_default() {
            let Some(id) = job_id_of(&item) else {
                continue;
            };
            // The index holds keys only, and lags the table: read each job whole.
            if let Some(job) = self.get(&id).await?
                && job.unfinished
            {
                jobs.push(job);
            }
        }
        Ok(PendingPage { jobs, next })
    }

    #[instrument(skip(self, state), fields(job_id = %id, webhook = %state.status))]
    async fn record_webhook(&self, id: &JobId, state: &WebhookState) -> Result<(), StoreError> {
        let value = serde_dynamo::to_attribute_value(state).map_err(StoreError::backend)?;
        self.set_field(id, JobField::Webhook, value).await
    }

    #[instrument(skip(self), fields(job_id = %id))]
    async fn mark_announced(&self, id: &JobId) -> Result<(), StoreError> {
        self.set_field(id, JobField::Announced, AttributeValue::Bool(true))
            .await
    }

    #[instrument(skip(self), fields(job_id = %id))]
    async fn delete(&self, id: &JobId) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PRIMARY_KEY.as_str(), text(id.as_str()))
            .send()
            .await
            .map_err(|e| StoreError::backend(AwsCallError::new("DeleteItem", &e)))?;
        Ok(())
    }
}
