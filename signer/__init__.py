"""Signer: everything a signer node needs, usable as a library."""
