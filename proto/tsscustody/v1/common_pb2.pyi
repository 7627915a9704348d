from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Envelope(_message.Message):
    __slots__ = ("session_id", "protocol", "round", "sender", "recipient", "payload", "signature")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    protocol: str
    round: str
    sender: int
    recipient: int
    payload: bytes
    signature: bytes
    def __init__(self, session_id: _Optional[bytes] = ..., protocol: _Optional[str] = ..., round: _Optional[str] = ..., sender: _Optional[int] = ..., recipient: _Optional[int] = ..., payload: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class Blame(_message.Message):
    __slots__ = ("party", "round", "check", "evidence")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    CHECK_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    party: int
    round: str
    check: str
    evidence: bytes
    def __init__(self, party: _Optional[int] = ..., round: _Optional[str] = ..., check: _Optional[str] = ..., evidence: _Optional[bytes] = ...) -> None: ...

class EthTransaction(_message.Message):
    __slots__ = ("chain_id", "nonce", "max_priority_fee_per_gas", "max_fee_per_gas", "gas_limit", "to", "value", "data", "legacy", "gas_price")
    CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    MAX_PRIORITY_FEE_PER_GAS_FIELD_NUMBER: _ClassVar[int]
    MAX_FEE_PER_GAS_FIELD_NUMBER: _ClassVar[int]
    GAS_LIMIT_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LEGACY_FIELD_NUMBER: _ClassVar[int]
    GAS_PRICE_FIELD_NUMBER: _ClassVar[int]
    chain_id: int
    nonce: int
    max_priority_fee_per_gas: str
    max_fee_per_gas: str
    gas_limit: int
    to: str
    value: str
    data: bytes
    legacy: bool
    gas_price: str
    def __init__(self, chain_id: _Optional[int] = ..., nonce: _Optional[int] = ..., max_priority_fee_per_gas: _Optional[str] = ..., max_fee_per_gas: _Optional[str] = ..., gas_limit: _Optional[int] = ..., to: _Optional[str] = ..., value: _Optional[str] = ..., data: _Optional[bytes] = ..., legacy: _Optional[bool] = ..., gas_price: _Optional[str] = ...) -> None: ...
