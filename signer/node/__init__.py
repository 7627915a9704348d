"""The signer node: gRPC server, protocol sessions, encrypted share store."""
