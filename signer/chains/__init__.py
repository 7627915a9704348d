"""Transaction formats and digests: signers recompute every digest from the transaction body."""
