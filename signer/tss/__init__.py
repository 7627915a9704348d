"""The protocol library: pure threshold-ECDSA (CGGMP24) maths and rounds. No I/O, no clock."""
