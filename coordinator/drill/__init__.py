"""Disaster-recovery drills: `tssctl drill --scenario NAME` and `tssctl drill verify REPORT`.

Modules: `report` (the report model, its digest, JSON and Markdown), `runner` (the context a
scenario acts through, step timing and progress, RTO, audit references, attestation), `scenarios`
(the registry: restart, refresh, lose-one, restore-backup, reshare-replace) and `verify` (checking
an attested report against the audit public key and the verified audit log).
"""
