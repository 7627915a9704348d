"""The schema of a tssctl profile file (coordinator/cli_remote.py): imported only when a profile is
read, so other commands do not pay for loading pydantic."""

from __future__ import annotations

from signer.node.config_fields import Address, ConfigModel


class ProfileFile(ConfigModel):
    """The same four values as the flags and environment; paths relative to the profile file."""

    addr: Address
    cacert: str = ""
    cert: str = ""
    key: str = ""
