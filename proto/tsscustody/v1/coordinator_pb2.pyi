import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from tsscustody.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RequestState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REQUEST_STATE_UNSPECIFIED: _ClassVar[RequestState]
    REQUEST_STATE_SUBMITTED: _ClassVar[RequestState]
    REQUEST_STATE_PENDING_APPROVAL: _ClassVar[RequestState]
    REQUEST_STATE_APPROVED: _ClassVar[RequestState]
    REQUEST_STATE_TIME_LOCKED: _ClassVar[RequestState]
    REQUEST_STATE_SIGNING: _ClassVar[RequestState]
    REQUEST_STATE_SIGNED: _ClassVar[RequestState]
    REQUEST_STATE_REJECTED: _ClassVar[RequestState]
    REQUEST_STATE_BLOCKED: _ClassVar[RequestState]
    REQUEST_STATE_EXPIRED: _ClassVar[RequestState]
    REQUEST_STATE_FAILED: _ClassVar[RequestState]

class RequestKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REQUEST_KIND_UNSPECIFIED: _ClassVar[RequestKind]
    REQUEST_KIND_WITHDRAWAL: _ClassVar[RequestKind]
    REQUEST_KIND_COLD_SWEEP: _ClassVar[RequestKind]
    REQUEST_KIND_APPROVAL: _ClassVar[RequestKind]
    REQUEST_KIND_CONTRACT_CALL: _ClassVar[RequestKind]
    REQUEST_KIND_REPLACEMENT: _ClassVar[RequestKind]
    REQUEST_KIND_MESSAGE: _ClassVar[RequestKind]

class ErrorReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_REASON_UNSPECIFIED: _ClassVar[ErrorReason]
    INVALID_REQUEST: _ClassVar[ErrorReason]
    FIELD_TOO_LARGE: _ClassVar[ErrorReason]
    INVALID_TRANSACTION: _ClassVar[ErrorReason]
    NOT_FOUND: _ClassVar[ErrorReason]
    IDEMPOTENCY_CONFLICT: _ClassVar[ErrorReason]
    DUPLICATE_APPROVAL: _ClassVar[ErrorReason]
    UNAVAILABLE_BELOW_THRESHOLD: _ClassVar[ErrorReason]
    PROTOCOL_ABORTED: _ClassVar[ErrorReason]
    FAILED_PRECONDITION: _ClassVar[ErrorReason]
    PERMISSION_DENIED: _ClassVar[ErrorReason]
    ROLE_NOT_ALLOWED: _ClassVar[ErrorReason]
    CERTIFICATE_REVOKED: _ClassVar[ErrorReason]
    POLICY_REFUSED: _ClassVar[ErrorReason]
    APPROVAL_INVALID: _ClassVar[ErrorReason]
    REJECTION_INVALID: _ClassVar[ErrorReason]
    INTERNAL: _ClassVar[ErrorReason]
REQUEST_STATE_UNSPECIFIED: RequestState
REQUEST_STATE_SUBMITTED: RequestState
REQUEST_STATE_PENDING_APPROVAL: RequestState
REQUEST_STATE_APPROVED: RequestState
REQUEST_STATE_TIME_LOCKED: RequestState
REQUEST_STATE_SIGNING: RequestState
REQUEST_STATE_SIGNED: RequestState
REQUEST_STATE_REJECTED: RequestState
REQUEST_STATE_BLOCKED: RequestState
REQUEST_STATE_EXPIRED: RequestState
REQUEST_STATE_FAILED: RequestState
REQUEST_KIND_UNSPECIFIED: RequestKind
REQUEST_KIND_WITHDRAWAL: RequestKind
REQUEST_KIND_COLD_SWEEP: RequestKind
REQUEST_KIND_APPROVAL: RequestKind
REQUEST_KIND_CONTRACT_CALL: RequestKind
REQUEST_KIND_REPLACEMENT: RequestKind
REQUEST_KIND_MESSAGE: RequestKind
ERROR_REASON_UNSPECIFIED: ErrorReason
INVALID_REQUEST: ErrorReason
FIELD_TOO_LARGE: ErrorReason
INVALID_TRANSACTION: ErrorReason
NOT_FOUND: ErrorReason
IDEMPOTENCY_CONFLICT: ErrorReason
DUPLICATE_APPROVAL: ErrorReason
UNAVAILABLE_BELOW_THRESHOLD: ErrorReason
PROTOCOL_ABORTED: ErrorReason
FAILED_PRECONDITION: ErrorReason
PERMISSION_DENIED: ErrorReason
ROLE_NOT_ALLOWED: ErrorReason
CERTIFICATE_REVOKED: ErrorReason
POLICY_REFUSED: ErrorReason
APPROVAL_INVALID: ErrorReason
REJECTION_INVALID: ErrorReason
INTERNAL: ErrorReason

class RequestTrail(_message.Message):
    __slots__ = ("entries", "destination_payouts", "destination_first_paid")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_PAYOUTS_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIRST_PAID_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditLine]
    destination_payouts: int
    destination_first_paid: _timestamp_pb2.Timestamp
    def __init__(self, entries: _Optional[_Iterable[_Union[AuditLine, _Mapping]]] = ..., destination_payouts: _Optional[int] = ..., destination_first_paid: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReportBalanceRequest(_message.Message):
    __slots__ = ("chain_id", "address", "asset", "amount", "next_nonce", "reported_at")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ASSET_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    NEXT_NONCE_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    chain_id: int
    address: str
    asset: str
    amount: str
    next_nonce: int
    reported_at: _timestamp_pb2.Timestamp
    def __init__(self, chain_id: _Optional[int] = ..., address: _Optional[str] = ..., asset: _Optional[str] = ..., amount: _Optional[str] = ..., next_nonce: _Optional[int] = ..., reported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Utxo(_message.Message):
    __slots__ = ("txid", "vout", "amount_sat", "prev_tx")
    TXID_FIELD_NUMBER: _ClassVar[int]
    VOUT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_SAT_FIELD_NUMBER: _ClassVar[int]
    PREV_TX_FIELD_NUMBER: _ClassVar[int]
    txid: bytes
    vout: int
    amount_sat: int
    prev_tx: bytes
    def __init__(self, txid: _Optional[bytes] = ..., vout: _Optional[int] = ..., amount_sat: _Optional[int] = ..., prev_tx: _Optional[bytes] = ...) -> None: ...

class ReportUtxosRequest(_message.Message):
    __slots__ = ("network", "address", "utxos", "reported_at")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    UTXOS_FIELD_NUMBER: _ClassVar[int]
    REPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    network: str
    address: str
    utxos: _containers.RepeatedCompositeFieldContainer[Utxo]
    reported_at: _timestamp_pb2.Timestamp
    def __init__(self, network: _Optional[str] = ..., address: _Optional[str] = ..., utxos: _Optional[_Iterable[_Union[Utxo, _Mapping]]] = ..., reported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReportBalanceResponse(_message.Message):
    __slots__ = ("action", "detail", "sweep")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SWEEP_FIELD_NUMBER: _ClassVar[int]
    action: str
    detail: str
    sweep: SigningRequest
    def __init__(self, action: _Optional[str] = ..., detail: _Optional[str] = ..., sweep: _Optional[_Union[SigningRequest, _Mapping]] = ...) -> None: ...

class ApproveRequestRequest(_message.Message):
    __slots__ = ("request_id", "approval")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    approval: bytes
    def __init__(self, request_id: _Optional[str] = ..., approval: _Optional[bytes] = ...) -> None: ...

class RejectRequestRequest(_message.Message):
    __slots__ = ("request_id", "officer_id", "signature", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OFFICER_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    officer_id: str
    signature: bytes
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., officer_id: _Optional[str] = ..., signature: _Optional[bytes] = ..., reason: _Optional[str] = ...) -> None: ...

class FreezeOrderRequest(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: bytes
    def __init__(self, order: _Optional[bytes] = ...) -> None: ...

class GetGovernanceRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ProposeChangeRequest(_message.Message):
    __slots__ = ("kind", "change_json")
    KIND_FIELD_NUMBER: _ClassVar[int]
    CHANGE_JSON_FIELD_NUMBER: _ClassVar[int]
    kind: str
    change_json: str
    def __init__(self, kind: _Optional[str] = ..., change_json: _Optional[str] = ...) -> None: ...

class GovernanceStatus(_message.Message):
    __slots__ = ("policy_version", "policy_hash", "registry_version", "registry_hash", "frozen_scopes", "policy_json", "registry_json", "pending_json", "frozen")
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    POLICY_HASH_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_VERSION_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_HASH_FIELD_NUMBER: _ClassVar[int]
    FROZEN_SCOPES_FIELD_NUMBER: _ClassVar[int]
    POLICY_JSON_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_JSON_FIELD_NUMBER: _ClassVar[int]
    PENDING_JSON_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FIELD_NUMBER: _ClassVar[int]
    policy_version: int
    policy_hash: bytes
    registry_version: int
    registry_hash: bytes
    frozen_scopes: _containers.RepeatedScalarFieldContainer[str]
    policy_json: str
    registry_json: str
    pending_json: str
    frozen: _containers.RepeatedCompositeFieldContainer[FrozenScope]
    def __init__(self, policy_version: _Optional[int] = ..., policy_hash: _Optional[bytes] = ..., registry_version: _Optional[int] = ..., registry_hash: _Optional[bytes] = ..., frozen_scopes: _Optional[_Iterable[str]] = ..., policy_json: _Optional[str] = ..., registry_json: _Optional[str] = ..., pending_json: _Optional[str] = ..., frozen: _Optional[_Iterable[_Union[FrozenScope, _Mapping]]] = ...) -> None: ...

class FrozenScope(_message.Message):
    __slots__ = ("scope", "since", "by")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    scope: str
    since: int
    by: str
    def __init__(self, scope: _Optional[str] = ..., since: _Optional[int] = ..., by: _Optional[str] = ...) -> None: ...

class ExportAuditRequest(_message.Message):
    __slots__ = ("since_seq",)
    SINCE_SEQ_FIELD_NUMBER: _ClassVar[int]
    since_seq: int
    def __init__(self, since_seq: _Optional[int] = ...) -> None: ...

class AuditLine(_message.Message):
    __slots__ = ("json",)
    JSON_FIELD_NUMBER: _ClassVar[int]
    json: str
    def __init__(self, json: _Optional[str] = ...) -> None: ...

class AttestReportRequest(_message.Message):
    __slots__ = ("report_digest", "kind")
    REPORT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    report_digest: bytes
    kind: str
    def __init__(self, report_digest: _Optional[bytes] = ..., kind: _Optional[str] = ...) -> None: ...

class ReportAttestation(_message.Message):
    __slots__ = ("signature", "audit_seq", "audit_hash", "audit_public_key")
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    AUDIT_SEQ_FIELD_NUMBER: _ClassVar[int]
    AUDIT_HASH_FIELD_NUMBER: _ClassVar[int]
    AUDIT_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    signature: bytes
    audit_seq: int
    audit_hash: bytes
    audit_public_key: bytes
    def __init__(self, signature: _Optional[bytes] = ..., audit_seq: _Optional[int] = ..., audit_hash: _Optional[bytes] = ..., audit_public_key: _Optional[bytes] = ...) -> None: ...

class CreateKeyRequest(_message.Message):
    __slots__ = ("name", "threshold", "level")
    NAME_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    threshold: int
    level: str
    def __init__(self, name: _Optional[str] = ..., threshold: _Optional[int] = ..., level: _Optional[str] = ...) -> None: ...

class GetKeyRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys", "next_page_token")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[Key]
    next_page_token: str
    def __init__(self, keys: _Optional[_Iterable[_Union[Key, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RefreshKeyRequest(_message.Message):
    __slots__ = ("key_id", "key_order")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ORDER_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    key_order: bytes
    def __init__(self, key_id: _Optional[str] = ..., key_order: _Optional[bytes] = ...) -> None: ...

class ReshareKeyRequest(_message.Message):
    __slots__ = ("key_id", "parties", "threshold", "dealers", "key_order")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    DEALERS_FIELD_NUMBER: _ClassVar[int]
    KEY_ORDER_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    parties: _containers.RepeatedScalarFieldContainer[int]
    threshold: int
    dealers: _containers.RepeatedScalarFieldContainer[int]
    key_order: bytes
    def __init__(self, key_id: _Optional[str] = ..., parties: _Optional[_Iterable[int]] = ..., threshold: _Optional[int] = ..., dealers: _Optional[_Iterable[int]] = ..., key_order: _Optional[bytes] = ...) -> None: ...

class Key(_message.Message):
    __slots__ = ("key_id", "name", "public_key", "chain_code", "threshold", "parties", "eth_address", "epoch", "committing_epoch", "retired", "create_time")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    CHAIN_CODE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    ETH_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    COMMITTING_EPOCH_FIELD_NUMBER: _ClassVar[int]
    RETIRED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    name: str
    public_key: bytes
    chain_code: bytes
    threshold: int
    parties: _containers.RepeatedScalarFieldContainer[int]
    eth_address: str
    epoch: int
    committing_epoch: int
    retired: _containers.RepeatedScalarFieldContainer[int]
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, key_id: _Optional[str] = ..., name: _Optional[str] = ..., public_key: _Optional[bytes] = ..., chain_code: _Optional[bytes] = ..., threshold: _Optional[int] = ..., parties: _Optional[_Iterable[int]] = ..., eth_address: _Optional[str] = ..., epoch: _Optional[int] = ..., committing_epoch: _Optional[int] = ..., retired: _Optional[_Iterable[int]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SubmitSigningRequestRequest(_message.Message):
    __slots__ = ("key_id", "idempotency_key", "path", "eth", "kind", "psbt", "message_standard", "message_body", "request_kind", "allocate_nonce", "replaces_request_id")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    ETH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PSBT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_STANDARD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_BODY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_KIND_FIELD_NUMBER: _ClassVar[int]
    ALLOCATE_NONCE_FIELD_NUMBER: _ClassVar[int]
    REPLACES_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    idempotency_key: str
    path: _containers.RepeatedScalarFieldContainer[int]
    eth: _common_pb2.EthTransaction
    kind: str
    psbt: bytes
    message_standard: str
    message_body: bytes
    request_kind: RequestKind
    allocate_nonce: bool
    replaces_request_id: str
    def __init__(self, key_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., path: _Optional[_Iterable[int]] = ..., eth: _Optional[_Union[_common_pb2.EthTransaction, _Mapping]] = ..., kind: _Optional[str] = ..., psbt: _Optional[bytes] = ..., message_standard: _Optional[str] = ..., message_body: _Optional[bytes] = ..., request_kind: _Optional[_Union[RequestKind, str]] = ..., allocate_nonce: _Optional[bool] = ..., replaces_request_id: _Optional[str] = ...) -> None: ...

class GetRequestRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class SigningRequest(_message.Message):
    __slots__ = ("request_id", "key_id", "state", "eth", "path", "digest", "r", "s", "v", "raw_tx", "tx_hash", "blame", "error", "from_address", "kind", "intent", "intent_digest", "intent_text", "approved_by", "time_lock_until", "policy_reason", "initiator", "expires_at", "created_at", "request_state", "request_kind", "create_time", "expire_time", "time_lock_end_time", "nonce_allocated", "replaces_request_id", "hold_note", "psbt", "signed_psbt", "btc_tx", "txid", "message_digest", "message_standard", "message_body", "message_signature")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ETH_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    R_FIELD_NUMBER: _ClassVar[int]
    S_FIELD_NUMBER: _ClassVar[int]
    V_FIELD_NUMBER: _ClassVar[int]
    RAW_TX_FIELD_NUMBER: _ClassVar[int]
    TX_HASH_FIELD_NUMBER: _ClassVar[int]
    BLAME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FROM_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    INTENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    INTENT_TEXT_FIELD_NUMBER: _ClassVar[int]
    APPROVED_BY_FIELD_NUMBER: _ClassVar[int]
    TIME_LOCK_UNTIL_FIELD_NUMBER: _ClassVar[int]
    POLICY_REASON_FIELD_NUMBER: _ClassVar[int]
    INITIATOR_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_STATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_KIND_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    TIME_LOCK_END_TIME_FIELD_NUMBER: _ClassVar[int]
    NONCE_ALLOCATED_FIELD_NUMBER: _ClassVar[int]
    REPLACES_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    HOLD_NOTE_FIELD_NUMBER: _ClassVar[int]
    PSBT_FIELD_NUMBER: _ClassVar[int]
    SIGNED_PSBT_FIELD_NUMBER: _ClassVar[int]
    BTC_TX_FIELD_NUMBER: _ClassVar[int]
    TXID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_STANDARD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_BODY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    key_id: str
    state: str
    eth: _common_pb2.EthTransaction
    path: _containers.RepeatedScalarFieldContainer[int]
    digest: bytes
    r: bytes
    s: bytes
    v: int
    raw_tx: bytes
    tx_hash: bytes
    blame: _containers.RepeatedCompositeFieldContainer[_common_pb2.Blame]
    error: str
    from_address: str
    kind: str
    intent: bytes
    intent_digest: bytes
    intent_text: str
    approved_by: _containers.RepeatedScalarFieldContainer[str]
    time_lock_until: int
    policy_reason: str
    initiator: str
    expires_at: int
    created_at: int
    request_state: RequestState
    request_kind: RequestKind
    create_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    time_lock_end_time: _timestamp_pb2.Timestamp
    nonce_allocated: bool
    replaces_request_id: str
    hold_note: str
    psbt: bytes
    signed_psbt: bytes
    btc_tx: bytes
    txid: str
    message_digest: bytes
    message_standard: str
    message_body: bytes
    message_signature: bytes
    def __init__(self, request_id: _Optional[str] = ..., key_id: _Optional[str] = ..., state: _Optional[str] = ..., eth: _Optional[_Union[_common_pb2.EthTransaction, _Mapping]] = ..., path: _Optional[_Iterable[int]] = ..., digest: _Optional[bytes] = ..., r: _Optional[bytes] = ..., s: _Optional[bytes] = ..., v: _Optional[int] = ..., raw_tx: _Optional[bytes] = ..., tx_hash: _Optional[bytes] = ..., blame: _Optional[_Iterable[_Union[_common_pb2.Blame, _Mapping]]] = ..., error: _Optional[str] = ..., from_address: _Optional[str] = ..., kind: _Optional[str] = ..., intent: _Optional[bytes] = ..., intent_digest: _Optional[bytes] = ..., intent_text: _Optional[str] = ..., approved_by: _Optional[_Iterable[str]] = ..., time_lock_until: _Optional[int] = ..., policy_reason: _Optional[str] = ..., initiator: _Optional[str] = ..., expires_at: _Optional[int] = ..., created_at: _Optional[int] = ..., request_state: _Optional[_Union[RequestState, str]] = ..., request_kind: _Optional[_Union[RequestKind, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., time_lock_end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., nonce_allocated: _Optional[bool] = ..., replaces_request_id: _Optional[str] = ..., hold_note: _Optional[str] = ..., psbt: _Optional[bytes] = ..., signed_psbt: _Optional[bytes] = ..., btc_tx: _Optional[bytes] = ..., txid: _Optional[str] = ..., message_digest: _Optional[bytes] = ..., message_standard: _Optional[str] = ..., message_body: _Optional[bytes] = ..., message_signature: _Optional[bytes] = ...) -> None: ...

class ListRequestsRequest(_message.Message):
    __slots__ = ("key_id", "state", "limit", "page_size", "page_token", "request_state")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REQUEST_STATE_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    state: str
    limit: int
    page_size: int
    page_token: str
    request_state: RequestState
    def __init__(self, key_id: _Optional[str] = ..., state: _Optional[str] = ..., limit: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., request_state: _Optional[_Union[RequestState, str]] = ...) -> None: ...

class ListRequestsResponse(_message.Message):
    __slots__ = ("requests", "next_page_token")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[SigningRequest]
    next_page_token: str
    def __init__(self, requests: _Optional[_Iterable[_Union[SigningRequest, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
