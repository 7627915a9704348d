"""Zero-knowledge proofs, one module per statement."""
