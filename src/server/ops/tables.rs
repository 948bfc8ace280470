//! The control plane on the wire: CreateTable, DescribeTable, ListTables,
//! UpdateTable, DeleteTable, DescribeLimits, DescribeEndpoints and the tag
//! operations.
//!
//! Tags live in the server's memory, keyed by table ARN: they are listed
//! while the server runs and dropped with the table, but not kept across a
//! restart (the kv catalogue has no place for them yet).

use std::time::UNIX_EPOCH;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Context;
use crate::ScalarType;
use crate::kv::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, GlobalSecondaryIndexUpdate,
    IndexProjection, IndexStatus, KeySchemaElement, KeyType, LocalSecondaryIndex, ProjectionType,
    ProvisionedThroughput, StreamSpecification, StreamViewType, TableDescription, TableStatus,
};
use crate::server::error::WireError;
use crate::server::wire::{Output, choice, constraint, parse, required, table_name};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeySchemaInput {
    attribute_name: Option<String>,
    key_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttributeDefinitionInput {
    attribute_name: Option<String>,
    attribute_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ThroughputInput {
    read_capacity_units: Option<i64>,
    write_capacity_units: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProjectionInput {
    projection_type: Option<String>,
    non_key_attributes: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
/// An index as sent in CreateTable, UpdateTable and restore overrides.
pub(super) struct IndexInput {
    index_name: Option<String>,
    key_schema: Option<Vec<KeySchemaInput>>,
    projection: Option<ProjectionInput>,
    provisioned_throughput: Option<ThroughputInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StreamInput {
    stream_enabled: Option<bool>,
    stream_view_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagInput {
    key: Option<String>,
    value: Option<String>,
}

/// CreateTable's parameters (also ImportTable's TableCreationParameters).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CreateTableInput {
    table_name: Option<String>,
    key_schema: Option<Vec<KeySchemaInput>>,
    attribute_definitions: Option<Vec<AttributeDefinitionInput>>,
    billing_mode: Option<String>,
    provisioned_throughput: Option<ThroughputInput>,
    stream_specification: Option<StreamInput>,
    local_secondary_indexes: Option<Vec<IndexInput>>,
    global_secondary_indexes: Option<Vec<IndexInput>>,
    tags: Option<Vec<TagInput>>,
}

fn key_schema(
    elements: Option<Vec<KeySchemaInput>>,
    field: &str,
) -> Result<Vec<KeySchemaElement>, WireError> {
    let elements = required(elements, field)?;
    if elements.is_empty() || elements.len() > 2 {
        return Err(constraint(
            "[]",
            field,
            if elements.is_empty() {
                "Member must have length greater than or equal to 1"
            } else {
                "Member must have length less than or equal to 2"
            },
        ));
    }
    elements
        .into_iter()
        .map(|element| {
            let key_type = choice(
                element.key_type.as_deref(),
                "keyType",
                &[("HASH", KeyType::Hash), ("RANGE", KeyType::Range)],
            )?;
            Ok(KeySchemaElement {
                attribute_name: required(element.attribute_name, "attributeName")?,
                key_type: required(key_type, "keyType")?,
            })
        })
        .collect()
}

fn attribute_definitions(
    definitions: Vec<AttributeDefinitionInput>,
) -> Result<Vec<AttributeDefinition>, WireError> {
    definitions
        .into_iter()
        .map(|definition| {
            let scalar = choice(
                definition.attribute_type.as_deref(),
                "attributeType",
                &[
                    ("B", ScalarType::B),
                    ("N", ScalarType::N),
                    ("S", ScalarType::S),
                ],
            )?;
            Ok(AttributeDefinition {
                attribute_name: required(definition.attribute_name, "attributeName")?,
                attribute_type: required(scalar, "attributeType")?,
            })
        })
        .collect()
}

fn throughput(input: Option<ThroughputInput>) -> Result<Option<(u64, u64)>, WireError> {
    let Some(input) = input else {
        return Ok(None);
    };
    let read = required(
        input.read_capacity_units,
        "provisionedThroughput.readCapacityUnits",
    )?;
    let write = required(
        input.write_capacity_units,
        "provisionedThroughput.writeCapacityUnits",
    )?;
    for (value, field) in [
        (read, "provisionedThroughput.readCapacityUnits"),
        (write, "provisionedThroughput.writeCapacityUnits"),
    ] {
        if value < 1 {
            return Err(constraint(
                &value.to_string(),
                field,
                "Member must have value greater than or equal to 1",
            ));
        }
    }
    Ok(Some((read.unsigned_abs(), write.unsigned_abs())))
}

fn projection(input: Option<ProjectionInput>) -> Result<IndexProjection, WireError> {
    let input = required(input, "projection")?;
    let projection_type = choice(
        input.projection_type.as_deref(),
        "projection.projectionType",
        &[
            ("ALL", ProjectionType::All),
            ("KEYS_ONLY", ProjectionType::KeysOnly),
            ("INCLUDE", ProjectionType::Include),
        ],
    )?;
    Ok(IndexProjection {
        projection_type: projection_type.unwrap_or(ProjectionType::All),
        non_key_attributes: input.non_key_attributes.unwrap_or_default(),
    })
}

pub(super) fn global_index(input: IndexInput) -> Result<GlobalSecondaryIndex, WireError> {
    Ok(GlobalSecondaryIndex {
        index_name: table_name(input.index_name, "indexName")?,
        key_schema: key_schema(input.key_schema, "keySchema")?,
        projection: projection(input.projection)?,
        provisioned_throughput: throughput(input.provisioned_throughput)?.map(|(r, w)| {
            ProvisionedThroughput {
                read_capacity_units: r,
                write_capacity_units: w,
            }
        }),
    })
}

/// A local secondary index from its wire shape.
pub(super) fn local_index(input: IndexInput) -> Result<LocalSecondaryIndex, WireError> {
    Ok(LocalSecondaryIndex {
        index_name: table_name(input.index_name, "indexName")?,
        key_schema: key_schema(input.key_schema, "keySchema")?,
        projection: projection(input.projection)?,
    })
}

pub(super) fn billing_mode(value: Option<&str>) -> Result<Option<BillingMode>, WireError> {
    choice(
        value,
        "billingMode",
        &[
            ("PROVISIONED", BillingMode::Provisioned),
            ("PAY_PER_REQUEST", BillingMode::PayPerRequest),
        ],
    )
}

fn stream(input: Option<StreamInput>) -> Result<Option<StreamSpecification>, WireError> {
    let Some(input) = input else {
        return Ok(None);
    };
    let view = choice(
        input.stream_view_type.as_deref(),
        "streamSpecification.streamViewType",
        &[
            ("NEW_IMAGE", StreamViewType::NewImage),
            ("OLD_IMAGE", StreamViewType::OldImage),
            ("NEW_AND_OLD_IMAGES", StreamViewType::NewAndOldImages),
            ("KEYS_ONLY", StreamViewType::KeysOnly),
        ],
    )?;
    Ok(Some(StreamSpecification {
        stream_enabled: required(input.stream_enabled, "streamSpecification.streamEnabled")?,
        stream_view_type: view,
    }))
}

/// The tags of a request (kv checks their lengths and count).
fn tags(input: Vec<TagInput>) -> Result<Vec<(String, String)>, WireError> {
    input
        .into_iter()
        .map(|tag| {
            Ok((
                required(tag.key, "tags.member.key")?,
                required(tag.value, "tags.member.value")?,
            ))
        })
        .collect()
}

/// The kv request `input` describes, and its table's name.
pub(super) fn create_table_request(
    context: &Context,
    input: &mut CreateTableInput,
) -> Result<(String, crate::kv::CreateTable), WireError> {
    let table = table_name(input.table_name.take(), "tableName")?;
    let schema = key_schema(input.key_schema.take(), "keySchema")?;
    let definitions = attribute_definitions(required(
        input.attribute_definitions.take(),
        "attributeDefinitions",
    )?)?;
    let mut request = context
        .db
        .create_table(table.clone())
        .key_schema(schema)
        .attribute_definitions(definitions);
    // On the wire an absent BillingMode means PROVISIONED (DynamoDB's API
    // default, which old clients rely on); the Rust API defaults to
    // on-demand.
    let mode = billing_mode(input.billing_mode.as_deref())?.unwrap_or(BillingMode::Provisioned);
    request = request.billing_mode(mode);
    if let Some((read, write)) = throughput(input.provisioned_throughput.take())? {
        request = request.provisioned_throughput(read, write);
    }
    if let Some(spec) = stream(input.stream_specification.take())? {
        request = request.stream_specification(spec);
    }
    for (member, indexes) in [
        ("LocalSecondaryIndexes", &input.local_secondary_indexes),
        ("GlobalSecondaryIndexes", &input.global_secondary_indexes),
    ] {
        if indexes.as_ref().is_some_and(Vec::is_empty) {
            return Err(WireError::validation(format!(
                "One or more parameter values were invalid: List of {member} is empty"
            )));
        }
    }
    for index in input.local_secondary_indexes.take().unwrap_or_default() {
        request = request.local_secondary_index(local_index(index)?);
    }
    for index in input.global_secondary_indexes.take().unwrap_or_default() {
        request = request.global_secondary_index(global_index(index)?);
    }
    Ok((table, request))
}

/// `CreateTable`.
pub fn create_table(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut input: CreateTableInput = parse(body)?;
    let (_, mut request) = create_table_request(context, &mut input)?;
    for (key, value) in tags(input.tags.unwrap_or_default())? {
        request = request.tag(key, value);
    }
    let output = request.send()?;
    Ok(Output::new()
        .set("TableDescription", describe(&output.table_description))
        .into_body())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableNameInput {
    table_name: Option<String>,
}

/// `DescribeTable`.
pub fn describe_table(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: TableNameInput = parse(body)?;
    let table = table_name(input.table_name, "tableName")?;
    let output = context.db.describe_table(table).send()?;
    Ok(Output::new()
        .set("Table", describe(&output.table))
        .into_body())
}

/// `DeleteTable`.
pub fn delete_table(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: TableNameInput = parse(body)?;
    let table = table_name(input.table_name, "tableName")?;
    let output = context.db.delete_table(table).send()?;
    Ok(Output::new()
        .set("TableDescription", describe(&output.table_description))
        .into_body())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListTablesInput {
    exclusive_start_table_name: Option<String>,
    limit: Option<i64>,
}

/// `ListTables`.
pub fn list_tables(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: ListTablesInput = parse(body)?;
    let mut request = context.db.list_tables();
    if let Some(start) = input.exclusive_start_table_name {
        request =
            request.exclusive_start_table_name(table_name(Some(start), "exclusiveStartTableName")?);
    }
    if let Some(limit) = input.limit {
        if limit < 1 {
            return Err(constraint(
                &limit.to_string(),
                "limit",
                "Member must have value greater than or equal to 1",
            ));
        }
        request = request.limit(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    let output = request.send()?;
    Ok(Output::new()
        .set("TableNames", output.table_names)
        .maybe("LastEvaluatedTableName", output.last_evaluated_table_name)
        .into_body())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IndexUpdateInput {
    create: Option<IndexInput>,
    delete: Option<IndexNameInput>,
    update: Option<IndexInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IndexNameInput {
    index_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateTableInput {
    table_name: Option<String>,
    attribute_definitions: Option<Vec<AttributeDefinitionInput>>,
    billing_mode: Option<String>,
    provisioned_throughput: Option<ThroughputInput>,
    stream_specification: Option<StreamInput>,
    global_secondary_index_updates: Option<Vec<IndexUpdateInput>>,
}

/// `UpdateTable`.
pub fn update_table(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: UpdateTableInput = parse(body)?;
    let table = table_name(input.table_name, "tableName")?;
    let mut request = context.db.update_table(table);
    for definition in attribute_definitions(input.attribute_definitions.unwrap_or_default())? {
        request =
            request.attribute_definition(definition.attribute_name, definition.attribute_type);
    }
    if let Some(mode) = billing_mode(input.billing_mode.as_deref())? {
        request = request.billing_mode(mode);
    }
    if let Some((read, write)) = throughput(input.provisioned_throughput)? {
        request = request.provisioned_throughput(read, write);
    }
    if let Some(spec) = stream(input.stream_specification)? {
        request = request.stream_specification(spec);
    }
    let mut updates = Vec::new();
    for update in input.global_secondary_index_updates.unwrap_or_default() {
        updates.push(match (update.create, update.delete, update.update) {
            (Some(create), None, None) => GlobalSecondaryIndexUpdate::Create(global_index(create)?),
            (None, Some(delete), None) => GlobalSecondaryIndexUpdate::Delete {
                index_name: table_name(delete.index_name, "indexName")?,
            },
            (None, None, Some(update)) => {
                let index_name = table_name(update.index_name, "indexName")?;
                let (read, write) = throughput(Some(required(
                    update.provisioned_throughput,
                    "provisionedThroughput",
                )?))?
                .ok_or_else(|| WireError::validation("ProvisionedThroughput is required"))?;
                GlobalSecondaryIndexUpdate::Update {
                    index_name,
                    provisioned_throughput: ProvisionedThroughput {
                        read_capacity_units: read,
                        write_capacity_units: write,
                    },
                }
            }
            _ => {
                return Err(WireError::validation(
                    "One or more parameter values were invalid: One of GlobalSecondaryIndexUpdate.Create, \
                     GlobalSecondaryIndexUpdate.Update, or GlobalSecondaryIndexUpdate.Delete must be specified",
                ));
            }
        });
    }
    if !updates.is_empty() {
        request = request.global_secondary_index_updates(updates);
    }
    let output = request.send()?;
    Ok(Output::new()
        .set("TableDescription", describe(&output.table_description))
        .into_body())
}

/// `DescribeLimits`: DynamoDB's default account and table quotas (nimbus
/// enforces none of them, so it reports the defaults SDK tooling expects).
pub fn describe_limits(_context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let _: Map<String, Value> = parse(body)?;
    Ok(Output::new()
        .set("AccountMaxReadCapacityUnits", 80_000)
        .set("AccountMaxWriteCapacityUnits", 80_000)
        .set("TableMaxReadCapacityUnits", 40_000)
        .set("TableMaxWriteCapacityUnits", 40_000)
        .into_body())
}

/// `DescribeEndpoints`: the server's own address.
pub fn describe_endpoints(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let _: Map<String, Value> = parse(body)?;
    Ok(Output::new()
        .set(
            "Endpoints",
            json!([{ "Address": context.endpoint, "CachePeriodInMinutes": 1440 }]),
        )
        .into_body())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagResourceInput {
    resource_arn: Option<String>,
    tags: Option<Vec<TagInput>>,
    tag_keys: Option<Vec<String>>,
}

/// `TagResource`.
pub fn tag_resource(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: TagResourceInput = parse(body)?;
    let tags = tags(required(input.tags, "tags")?)?;
    let mut request = context
        .db
        .tag_resource(required(input.resource_arn, "resourceArn")?);
    for (key, value) in tags {
        request = request.tag(key, value);
    }
    request.send()?;
    Ok(b"{}".to_vec())
}

/// `UntagResource`.
pub fn untag_resource(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: TagResourceInput = parse(body)?;
    let keys = required(input.tag_keys, "tagKeys")?;
    let mut request = context
        .db
        .untag_resource(required(input.resource_arn, "resourceArn")?);
    for key in keys {
        request = request.tag_key(key);
    }
    request.send()?;
    Ok(b"{}".to_vec())
}

/// `ListTagsOfResource`.
pub fn list_tags_of_resource(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: TagResourceInput = parse(body)?;
    let tags: Vec<Value> = context
        .db
        .list_tags_of_resource(required(input.resource_arn, "resourceArn")?)
        .send()?
        .into_iter()
        .map(|tag| json!({"Key": tag.key, "Value": tag.value}))
        .collect();
    Ok(Output::new().set("Tags", tags).into_body())
}

pub(super) fn key_schema_json(schema: &[KeySchemaElement]) -> Value {
    schema
        .iter()
        .map(|element| {
            json!({
                "AttributeName": element.attribute_name,
                "KeyType": match element.key_type { KeyType::Hash => "HASH", KeyType::Range => "RANGE" },
            })
        })
        .collect()
}

pub(super) fn projection_json(projection: &IndexProjection) -> Value {
    let projection_type = match projection.projection_type {
        ProjectionType::All => "ALL",
        ProjectionType::KeysOnly => "KEYS_ONLY",
        ProjectionType::Include => "INCLUDE",
    };
    if projection.non_key_attributes.is_empty() {
        json!({ "ProjectionType": projection_type })
    } else {
        json!({ "ProjectionType": projection_type, "NonKeyAttributes": projection.non_key_attributes })
    }
}

pub(super) fn throughput_json(throughput: Option<&ProvisionedThroughput>) -> Value {
    let (read, write) =
        throughput.map_or((0, 0), |t| (t.read_capacity_units, t.write_capacity_units));
    json!({ "ReadCapacityUnits": read, "WriteCapacityUnits": write, "NumberOfDecreasesToday": 0 })
}

pub(super) fn scalar_name(scalar: ScalarType) -> &'static str {
    match scalar {
        ScalarType::S => "S",
        ScalarType::N => "N",
        ScalarType::B => "B",
    }
}

fn table_status(status: TableStatus) -> &'static str {
    match status {
        TableStatus::Creating => "CREATING",
        TableStatus::Active => "ACTIVE",
        TableStatus::Updating => "UPDATING",
        TableStatus::Deleting => "DELETING",
    }
}

fn index_status(status: IndexStatus) -> &'static str {
    match status {
        IndexStatus::Creating => "CREATING",
        IndexStatus::Updating => "UPDATING",
        IndexStatus::Deleting => "DELETING",
        IndexStatus::Active => "ACTIVE",
    }
}

fn view_type(view: StreamViewType) -> &'static str {
    match view {
        StreamViewType::KeysOnly => "KEYS_ONLY",
        StreamViewType::NewImage => "NEW_IMAGE",
        StreamViewType::OldImage => "OLD_IMAGE",
        StreamViewType::NewAndOldImages => "NEW_AND_OLD_IMAGES",
    }
}

/// A `TableDescription` as DynamoDB sends it.
pub fn describe(table: &TableDescription) -> Value {
    let created = table
        .creation_date_time
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut object = Map::new();
    let mut put = |name: &str, value: Value| {
        object.insert(name.to_owned(), value);
    };
    put("TableName", json!(table.table_name));
    put("TableStatus", json!(table_status(table.table_status)));
    put("TableId", json!(table.table_id));
    put("TableArn", json!(table.table_arn));
    put("KeySchema", key_schema_json(&table.key_schema));
    put(
        "AttributeDefinitions",
        table
            .attribute_definitions
            .iter()
            .map(|d| json!({"AttributeName": d.attribute_name, "AttributeType": scalar_name(d.attribute_type)}))
            .collect(),
    );
    put("CreationDateTime", json!(created));
    put("ItemCount", json!(table.item_count));
    put("TableSizeBytes", json!(table.table_size_bytes));
    put(
        "ProvisionedThroughput",
        throughput_json(table.provisioned_throughput.as_ref()),
    );
    if table.billing_mode == BillingMode::PayPerRequest {
        put(
            "BillingModeSummary",
            json!({"BillingMode": "PAY_PER_REQUEST", "LastUpdateToPayPerRequestDateTime": created}),
        );
    }
    if let Some(spec) = &table.stream_specification
        && spec.stream_enabled
    {
        let mut stream = Map::new();
        stream.insert("StreamEnabled".into(), json!(true));
        if let Some(view) = spec.stream_view_type {
            stream.insert("StreamViewType".into(), json!(view_type(view)));
        }
        put("StreamSpecification", Value::Object(stream));
    }
    if let Some(arn) = &table.latest_stream_arn {
        put("LatestStreamArn", json!(arn));
    }
    if let Some(label) = &table.latest_stream_label {
        put("LatestStreamLabel", json!(label));
    }
    if !table.local_secondary_indexes.is_empty() {
        put(
            "LocalSecondaryIndexes",
            table
                .local_secondary_indexes
                .iter()
                .map(|index| {
                    json!({
                        "IndexName": index.index_name,
                        "KeySchema": key_schema_json(&index.key_schema),
                        "Projection": projection_json(&index.projection),
                        "IndexSizeBytes": index.index_size_bytes,
                        "ItemCount": index.item_count,
                        "IndexArn": index.index_arn,
                    })
                })
                .collect(),
        );
    }
    if !table.global_secondary_indexes.is_empty() {
        put(
            "GlobalSecondaryIndexes",
            table
                .global_secondary_indexes
                .iter()
                .map(|index| {
                    let mut value = json!({
                        "IndexName": index.index_name,
                        "KeySchema": key_schema_json(&index.key_schema),
                        "Projection": projection_json(&index.projection),
                        "IndexStatus": index_status(index.index_status),
                        "ProvisionedThroughput": throughput_json(index.provisioned_throughput.as_ref()),
                        "IndexSizeBytes": index.index_size_bytes,
                        "ItemCount": index.item_count,
                        "IndexArn": index.index_arn,
                    });
                    if index.backfilling {
                        value["Backfilling"] = json!(true);
                    }
                    value
                })
                .collect(),
        );
    }
    put("DeletionProtectionEnabled", json!(false));
    Value::Object(object)
}
