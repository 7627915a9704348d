"""The schema of a local cluster's `cluster.json` (coordinator/cluster.py `ClusterInfo`): written by
`tssctl cluster up` and the cluster tools, read by every tssctl command on a local cluster. Imported
only when the file is read, so building the parser does not load pydantic."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from signer.node.config_fields import Address, ConfigModel, Level, PartyKey


class ClusterFile(ConfigModel):
    """Where the coordinator and signers listen, their pids, the cluster's threshold and level."""

    coordinator: Address
    signers: Annotated[dict[PartyKey, Address], Field(min_length=1)]
    pids: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    threshold: Annotated[int, Field(ge=1)]
    level: Level

    @model_validator(mode="after")
    def _threshold_reachable(self) -> ClusterFile:
        if self.threshold > len(self.signers):
            raise ValueError(f"threshold: {self.threshold} is more than the {len(self.signers)} signers")
        return self
