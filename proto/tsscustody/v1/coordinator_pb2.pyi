from tsscustody.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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

class Key(_message.Message):
    __slots__ = ("key_id", "name", "public_key", "chain_code", "threshold", "parties", "eth_address", "epoch")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    CHAIN_CODE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    ETH_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    name: str
    public_key: bytes
    chain_code: bytes
    threshold: int
    parties: _containers.RepeatedScalarFieldContainer[int]
    eth_address: str
    epoch: int
    def __init__(self, key_id: _Optional[str] = ..., name: _Optional[str] = ..., public_key: _Optional[bytes] = ..., chain_code: _Optional[bytes] = ..., threshold: _Optional[int] = ..., parties: _Optional[_Iterable[int]] = ..., eth_address: _Optional[str] = ..., epoch: _Optional[int] = ...) -> None: ...

class SubmitSigningRequestRequest(_message.Message):
    __slots__ = ("key_id", "idempotency_key", "path", "eth")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    ETH_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    idempotency_key: str
    path: _containers.RepeatedScalarFieldContainer[int]
    eth: _common_pb2.EthTransaction
    def __init__(self, key_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., path: _Optional[_Iterable[int]] = ..., eth: _Optional[_Union[_common_pb2.EthTransaction, _Mapping]] = ...) -> None: ...

class GetRequestRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class SigningRequest(_message.Message):
    __slots__ = ("request_id", "key_id", "state", "eth", "path", "digest", "r", "s", "v", "raw_tx", "tx_hash", "blame", "error", "from_address")
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
    def __init__(self, request_id: _Optional[str] = ..., key_id: _Optional[str] = ..., state: _Optional[str] = ..., eth: _Optional[_Union[_common_pb2.EthTransaction, _Mapping]] = ..., path: _Optional[_Iterable[int]] = ..., digest: _Optional[bytes] = ..., r: _Optional[bytes] = ..., s: _Optional[bytes] = ..., v: _Optional[int] = ..., raw_tx: _Optional[bytes] = ..., tx_hash: _Optional[bytes] = ..., blame: _Optional[_Iterable[_Union[_common_pb2.Blame, _Mapping]]] = ..., error: _Optional[str] = ..., from_address: _Optional[str] = ...) -> None: ...

class ListRequestsRequest(_message.Message):
    __slots__ = ("key_id", "state", "limit")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    state: str
    limit: int
    def __init__(self, key_id: _Optional[str] = ..., state: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListRequestsResponse(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[SigningRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[SigningRequest, _Mapping]]] = ...) -> None: ...
