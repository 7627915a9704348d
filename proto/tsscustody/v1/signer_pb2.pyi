from tsscustody.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExportBackupRequest(_message.Message):
    __slots__ = ("key_id", "recovery_fingerprint")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    recovery_fingerprint: bytes
    def __init__(self, key_id: _Optional[str] = ..., recovery_fingerprint: _Optional[bytes] = ...) -> None: ...

class ExportBackupResponse(_message.Message):
    __slots__ = ("kit", "recovery_fingerprint", "epoch", "party")
    KIT_FIELD_NUMBER: _ClassVar[int]
    RECOVERY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    PARTY_FIELD_NUMBER: _ClassVar[int]
    kit: bytes
    recovery_fingerprint: bytes
    epoch: int
    party: int
    def __init__(self, kit: _Optional[bytes] = ..., recovery_fingerprint: _Optional[bytes] = ..., epoch: _Optional[int] = ..., party: _Optional[int] = ...) -> None: ...

class KeyCommitteeRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class KeyCommitteeResponse(_message.Message):
    __slots__ = ("committee",)
    COMMITTEE_FIELD_NUMBER: _ClassVar[int]
    committee: bytes
    def __init__(self, committee: _Optional[bytes] = ...) -> None: ...

class CommitEpochRequest(_message.Message):
    __slots__ = ("key_id", "epoch", "confirmations")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    CONFIRMATIONS_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    epoch: int
    confirmations: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, key_id: _Optional[str] = ..., epoch: _Optional[int] = ..., confirmations: _Optional[_Iterable[bytes]] = ...) -> None: ...

class CommitEpochResponse(_message.Message):
    __slots__ = ("epoch", "adopted")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    ADOPTED_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    adopted: bool
    def __init__(self, epoch: _Optional[int] = ..., adopted: _Optional[bool] = ...) -> None: ...

class SessionEvidenceRequest(_message.Message):
    __slots__ = ("session_id", "sender", "round")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    sender: int
    round: str
    def __init__(self, session_id: _Optional[bytes] = ..., sender: _Optional[int] = ..., round: _Optional[str] = ...) -> None: ...

class SessionEvidenceResponse(_message.Message):
    __slots__ = ("envelopes",)
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    envelopes: _containers.RepeatedCompositeFieldContainer[_common_pb2.Envelope]
    def __init__(self, envelopes: _Optional[_Iterable[_Union[_common_pb2.Envelope, _Mapping]]] = ...) -> None: ...

class InstallChangeRequest(_message.Message):
    __slots__ = ("kind", "change_json")
    KIND_FIELD_NUMBER: _ClassVar[int]
    CHANGE_JSON_FIELD_NUMBER: _ClassVar[int]
    kind: str
    change_json: str
    def __init__(self, kind: _Optional[str] = ..., change_json: _Optional[str] = ...) -> None: ...

class ApplyFreezeOrderRequest(_message.Message):
    __slots__ = ("order", "unfreeze")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    UNFREEZE_FIELD_NUMBER: _ClassVar[int]
    order: bytes
    unfreeze: bool
    def __init__(self, order: _Optional[bytes] = ..., unfreeze: _Optional[bool] = ...) -> None: ...

class SignerGovernance(_message.Message):
    __slots__ = ("policy_version", "policy_hash", "registry_version", "registry_hash", "frozen_scopes")
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    POLICY_HASH_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_VERSION_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_HASH_FIELD_NUMBER: _ClassVar[int]
    FROZEN_SCOPES_FIELD_NUMBER: _ClassVar[int]
    policy_version: int
    policy_hash: bytes
    registry_version: int
    registry_hash: bytes
    frozen_scopes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, policy_version: _Optional[int] = ..., policy_hash: _Optional[bytes] = ..., registry_version: _Optional[int] = ..., registry_hash: _Optional[bytes] = ..., frozen_scopes: _Optional[_Iterable[str]] = ...) -> None: ...

class StartSessionRequest(_message.Message):
    __slots__ = ("session_id", "protocol", "key_id", "parties", "threshold", "level", "path", "dealers", "committee", "new_parties", "key_order")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    DEALERS_FIELD_NUMBER: _ClassVar[int]
    COMMITTEE_FIELD_NUMBER: _ClassVar[int]
    NEW_PARTIES_FIELD_NUMBER: _ClassVar[int]
    KEY_ORDER_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    protocol: str
    key_id: str
    parties: _containers.RepeatedScalarFieldContainer[int]
    threshold: int
    level: str
    path: _containers.RepeatedScalarFieldContainer[int]
    dealers: _containers.RepeatedScalarFieldContainer[int]
    committee: bytes
    new_parties: _containers.RepeatedScalarFieldContainer[int]
    key_order: bytes
    def __init__(self, session_id: _Optional[bytes] = ..., protocol: _Optional[str] = ..., key_id: _Optional[str] = ..., parties: _Optional[_Iterable[int]] = ..., threshold: _Optional[int] = ..., level: _Optional[str] = ..., path: _Optional[_Iterable[int]] = ..., dealers: _Optional[_Iterable[int]] = ..., committee: _Optional[bytes] = ..., new_parties: _Optional[_Iterable[int]] = ..., key_order: _Optional[bytes] = ...) -> None: ...

class DeliverRequest(_message.Message):
    __slots__ = ("session_id", "envelopes", "attestations")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    ENVELOPES_FIELD_NUMBER: _ClassVar[int]
    ATTESTATIONS_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    envelopes: _containers.RepeatedCompositeFieldContainer[_common_pb2.Envelope]
    attestations: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, session_id: _Optional[bytes] = ..., envelopes: _Optional[_Iterable[_Union[_common_pb2.Envelope, _Mapping]]] = ..., attestations: _Optional[_Iterable[bytes]] = ...) -> None: ...

class SessionStep(_message.Message):
    __slots__ = ("outgoing", "done", "public_output", "attestation", "confirmation")
    OUTGOING_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ATTESTATION_FIELD_NUMBER: _ClassVar[int]
    CONFIRMATION_FIELD_NUMBER: _ClassVar[int]
    outgoing: _containers.RepeatedCompositeFieldContainer[_common_pb2.Envelope]
    done: bool
    public_output: bytes
    attestation: bytes
    confirmation: bytes
    def __init__(self, outgoing: _Optional[_Iterable[_Union[_common_pb2.Envelope, _Mapping]]] = ..., done: _Optional[bool] = ..., public_output: _Optional[bytes] = ..., attestation: _Optional[bytes] = ..., confirmation: _Optional[bytes] = ...) -> None: ...

class PartialSignRequest(_message.Message):
    __slots__ = ("key_id", "presignature_id", "eth", "request_id", "approvals", "initiator", "expires_at", "path", "policy_hash", "kind", "attestations", "psbt", "input_index", "message_standard", "message_body")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PRESIGNATURE_ID_FIELD_NUMBER: _ClassVar[int]
    ETH_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    INITIATOR_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    POLICY_HASH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ATTESTATIONS_FIELD_NUMBER: _ClassVar[int]
    PSBT_FIELD_NUMBER: _ClassVar[int]
    INPUT_INDEX_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_STANDARD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_BODY_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    presignature_id: bytes
    eth: _common_pb2.EthTransaction
    request_id: str
    approvals: _containers.RepeatedScalarFieldContainer[bytes]
    initiator: str
    expires_at: int
    path: _containers.RepeatedScalarFieldContainer[int]
    policy_hash: bytes
    kind: str
    attestations: _containers.RepeatedScalarFieldContainer[bytes]
    psbt: bytes
    input_index: int
    message_standard: str
    message_body: bytes
    def __init__(self, key_id: _Optional[str] = ..., presignature_id: _Optional[bytes] = ..., eth: _Optional[_Union[_common_pb2.EthTransaction, _Mapping]] = ..., request_id: _Optional[str] = ..., approvals: _Optional[_Iterable[bytes]] = ..., initiator: _Optional[str] = ..., expires_at: _Optional[int] = ..., path: _Optional[_Iterable[int]] = ..., policy_hash: _Optional[bytes] = ..., kind: _Optional[str] = ..., attestations: _Optional[_Iterable[bytes]] = ..., psbt: _Optional[bytes] = ..., input_index: _Optional[int] = ..., message_standard: _Optional[str] = ..., message_body: _Optional[bytes] = ...) -> None: ...

class PartialSignResponse(_message.Message):
    __slots__ = ("party", "sigma", "digest", "attestation")
    PARTY_FIELD_NUMBER: _ClassVar[int]
    SIGMA_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    ATTESTATION_FIELD_NUMBER: _ClassVar[int]
    party: int
    sigma: bytes
    digest: bytes
    attestation: bytes
    def __init__(self, party: _Optional[int] = ..., sigma: _Optional[bytes] = ..., digest: _Optional[bytes] = ..., attestation: _Optional[bytes] = ...) -> None: ...

class NodeStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeStatusResponse(_message.Message):
    __slots__ = ("party", "key_ids", "presignatures", "boot_id", "ledger_saturated_until", "attestation")
    class PresignaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    PARTY_FIELD_NUMBER: _ClassVar[int]
    KEY_IDS_FIELD_NUMBER: _ClassVar[int]
    PRESIGNATURES_FIELD_NUMBER: _ClassVar[int]
    BOOT_ID_FIELD_NUMBER: _ClassVar[int]
    LEDGER_SATURATED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    ATTESTATION_FIELD_NUMBER: _ClassVar[int]
    party: int
    key_ids: _containers.RepeatedScalarFieldContainer[str]
    presignatures: _containers.ScalarMap[str, int]
    boot_id: bytes
    ledger_saturated_until: int
    attestation: bytes
    def __init__(self, party: _Optional[int] = ..., key_ids: _Optional[_Iterable[str]] = ..., presignatures: _Optional[_Mapping[str, int]] = ..., boot_id: _Optional[bytes] = ..., ledger_saturated_until: _Optional[int] = ..., attestation: _Optional[bytes] = ...) -> None: ...
