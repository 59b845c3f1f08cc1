"""The DynamoDB mirror's two tables: the only module that speaks DynamoDB.

Writes are UpdateItem with SET of the attributes given, conditional on the version, so a write
never removes or overwrites an attribute it does not name (the pipeline's own) and an older
state never overwrites a newer one. Calls are bounded like SQS's (uploads/queue/sqs.py): an
outage costs a caller seconds, never a minute."""

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]
BY_TENANT = "byTenant"
MAX_BATCH_GET = 100  # DynamoDB's BatchGetItem limit
UNPROCESSED_RETRIES = 5
# Errors that say nothing about the item: the table is unreachable, busy or not there yet.
TRANSIENT_CODES = {
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "ThrottlingException",
    "InternalServerError",
    "ServiceUnavailable",
    "ResourceNotFoundException",
    "LimitExceededException",
}

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class DynamoDBUnavailable(Exception):
    """DynamoDB did not answer, or answered that it cannot now: try again later."""


class ItemRejected(ValueError):
    """DynamoDB refused the write itself (a validation error): sending it again never succeeds."""


@dataclass(frozen=True)
class Tables:
    catalog: str
    upload_state: str


def mirror_tables() -> Tables | None:
    """The tables when the mirror is on (DYNAMODB_CATALOG_TABLE set), else None."""
    catalog = settings.DYNAMODB_CATALOG_TABLE
    if not catalog:
        return None
    return Tables(catalog=catalog, upload_state=settings.DYNAMODB_UPLOAD_STATE_TABLE or f"{catalog}_UploadState")


def update_if_newer(
    *, table: str, key: Mapping[str, str], attributes: Mapping[str, Any], same_version: bool = False
) -> bool:
    """SETs `attributes` (which include `version`) unless the item already has this version or a
    newer one. True: written. False: a newer (or the same) state is there, which is success.
    `same_version`: also replace an item at this version (a repair of an item that differs from
    what its version stands for); a newer one is still never touched."""
    names = {f"#a{i}": name for i, name in enumerate(attributes)}
    values = {f":a{i}": _serializer.serialize(value) for i, value in enumerate(attributes.values())}
    version = next(alias for alias, name in names.items() if name == "version")
    older = "<=" if same_version else "<"
    try:
        client().update_item(
            TableName=table,
            Key={name: _serializer.serialize(value) for name, value in key.items()},
            UpdateExpression="SET " + ", ".join(f"{alias} = :{alias[1:]}" for alias in names),
            ConditionExpression=f"attribute_not_exists({version}) OR {version} {older} :{version[1:]}",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ConditionalCheckFailedException":
            return False
        if code == "ValidationException":
            raise ItemRejected(str(exc)) from exc
        raise DynamoDBUnavailable(str(exc)) from exc
    except BotoCoreError as exc:
        raise DynamoDBUnavailable(str(exc)) from exc
    return True


def batch_get(*, table: str, keys: Sequence[Mapping[str, str]], attributes: Sequence[str] = ()) -> list[Item]:
    """The items of `keys` that exist (any order), in BatchGetItem calls of at most 100 keys.
    Keys DynamoDB leaves unprocessed (throttling) are asked again with backoff; if some remain
    after that, DynamoDBUnavailable: a caller never takes a partial answer for a whole one."""
    found: list[Item] = []
    for start in range(0, len(keys), MAX_BATCH_GET):
        request: dict[str, Any] = {"Keys": [_serialize(key) for key in keys[start : start + MAX_BATCH_GET]]}
        if attributes:
            request["ProjectionExpression"] = ", ".join(f"#p{i}" for i in range(len(attributes)))
            request["ExpressionAttributeNames"] = {f"#p{i}": name for i, name in enumerate(attributes)}
        for attempt in range(UNPROCESSED_RETRIES + 1):
            response = _call("batch_get_item", RequestItems={table: request})
            found.extend(_deserialize(item) for item in response.get("Responses", {}).get(table, []))
            unprocessed = response.get("UnprocessedKeys", {}).get(table)
            if not unprocessed:
                break
            if attempt == UNPROCESSED_RETRIES:
                raise DynamoDBUnavailable(f"{len(unprocessed['Keys'])} keys still unprocessed by BatchGetItem.")
            request = dict(unprocessed)
            time.sleep(min(0.05 * 2**attempt, 1.0))
    return found


def get_item(*, table: str, key: Mapping[str, str]) -> Item | None:
    response = _call("get_item", TableName=table, Key=_serialize(key), ConsistentRead=True)
    item = response.get("Item")
    return _deserialize(item) if item else None


def query_partition(*, table: str, tracking_id: str) -> list[Item]:
    """Every upload-state item of one submission (one partition: a handful of items)."""
    response = _call(
        "query",
        TableName=table,
        KeyConditionExpression="trackingId = :t",
        ExpressionAttributeValues={":t": {"S": tracking_id}},
        ConsistentRead=True,
    )
    return [_deserialize(item) for item in response.get("Items", [])]


def scan_pages(
    *, table: str, tenant_id: str | None = None, since: str | None = None, by_tenant: bool = False
) -> Iterator[list[Item]]:
    """The table's items, one page (up to 1 MB) at a time, optionally of one tenant and updated
    since an ISO 8601 time. `by_tenant`: the table has the byTenant index (the catalog table),
    so a tenant's items are a Query, not a Scan."""
    request: dict[str, Any] = {"TableName": table}
    conditions, values = [], {}
    if tenant_id is not None:
        conditions.append("tenantId = :t")
        values[":t"] = {"S": tenant_id}
    if since is not None:
        conditions.append("updatedAt >= :s")
        values[":s"] = {"S": since}
    operation = "scan"
    if tenant_id is not None and by_tenant:
        operation = "query"
        request.update(IndexName=BY_TENANT, KeyConditionExpression=" AND ".join(conditions))
    elif conditions:
        request["FilterExpression"] = " AND ".join(conditions)
    if values:
        request["ExpressionAttributeValues"] = values
    while True:
        response = _call(operation, **request)
        yield [_deserialize(item) for item in response.get("Items", [])]
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def create_tables(tables: Tables, *, wait: bool = True) -> list[str]:
    """Creates whichever table is missing (on-demand billing; the catalog table with its byTenant
    index) and waits until each is active. Returns the names it created: none when both exist."""
    string = "S"
    definitions: dict[str, dict[str, Any]] = {
        tables.catalog: {
            "KeySchema": [{"AttributeName": "trackingId", "KeyType": "HASH"}],
            "AttributeDefinitions": [
                {"AttributeName": name, "AttributeType": string} for name in ("trackingId", "tenantId", "updatedAt")
            ],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": BY_TENANT,
                    "KeySchema": [
                        {"AttributeName": "tenantId", "KeyType": "HASH"},
                        {"AttributeName": "updatedAt", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        },
        tables.upload_state: {
            "KeySchema": [
                {"AttributeName": "trackingId", "KeyType": "HASH"},
                {"AttributeName": "mediaId", "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": [
                {"AttributeName": name, "AttributeType": string} for name in ("trackingId", "mediaId")
            ],
        },
    }
    created = []
    for name, definition in definitions.items():
        try:
            client().create_table(TableName=name, BillingMode="PAY_PER_REQUEST", **definition)
            created.append(name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise DynamoDBUnavailable(str(exc)) from exc
        except BotoCoreError as exc:
            raise DynamoDBUnavailable(str(exc)) from exc
        if wait:
            try:
                client().get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
            except (BotoCoreError, ClientError) as exc:  # WaiterError is a BotoCoreError
                raise DynamoDBUnavailable(f"{name} did not become active: {exc}") from exc
    return created


def item_size(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB counts it against its 400 KB limit: each attribute's name plus
    its value (strings in UTF-8 bytes, numbers about 1 byte per 2 digits plus 1, maps and lists
    3 bytes plus their contents)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | float | Decimal):
        return (len(str(abs(value)).replace(".", "").lstrip("0")) + 1) // 2 + 1
    if isinstance(value, Mapping):
        return 3 + sum(len(k.encode()) + 1 + _value_size(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return 3 + sum(1 + _value_size(v) for v in value)
    raise TypeError(f"no DynamoDB size for {type(value).__name__}")


def _call(operation: str, **request: Any) -> dict[str, Any]:
    try:
        response: dict[str, Any] = getattr(client(), operation)(**request)
    except (ClientError, BotoCoreError) as exc:
        raise DynamoDBUnavailable(str(exc)) from exc
    return response


def _serialize(key: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in key.items()}


def _deserialize(item: Mapping[str, Any]) -> Item:
    return {name: _plain(_deserializer.deserialize(value)) for name, value in item.items()}


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; JSON and the rest of the portal want int or float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_plain(v) for v in value]
    return value


def client() -> "DynamoDBClient":
    """The process's DynamoDB client, for the endpoint the environment names now."""
    # boto3 reads the endpoint from the environment when the client is made; keying the cache by
    # it lets a process (or a test) that changes the endpoint get a client for the new one.
    endpoint = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL") or ""
    return _client_for(settings.AWS_REGION, endpoint)


@lru_cache(maxsize=8)
def _client_for(region: str, endpoint: str) -> "DynamoDBClient":
    config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"})
    return boto3.session.Session().client("dynamodb", region_name=region, config=config)
