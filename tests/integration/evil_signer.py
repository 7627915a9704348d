"""A compromised signer process for attack tests: the real node with one envelope rewritten.

    python tests/integration/evil_signer.py MODE --config node.json

MODE `badsig`: every keygen/r2 envelope it emits carries a corrupted signature.
MODE `echo_lie`: its keygen/r2 broadcast (validly signed with its own key) echoes a wrong hash
for party 1's round-1 broadcast.
"""

from __future__ import annotations

import dataclasses
import sys

from signer.node import sessions
from signer.node.identity import sign
from signer.node.server import main
from signer.tss.keygen_msgs import KeygenRound2Broadcast

MODE = sys.argv[1]
_wrap = sessions.SessionManager._wrap


def _evil_wrap(self: sessions.SessionManager, s: sessions.Session, m: sessions.Outgoing) -> sessions.Envelope:
    e = _wrap(self, s, m)
    if e.round != "keygen/r2":
        return e
    if MODE == "badsig":
        return dataclasses.replace(e, signature=bytes(64))
    if MODE == "echo_lie" and e.recipient == 0:
        msg = KeygenRound2Broadcast.decode(e.payload, len(s.parties) + 1)
        echo = tuple((j, bytes(32) if j == 1 else h) for j, h in msg.echo)
        payload = dataclasses.replace(msg, echo=echo).encode()
        sig = sign(self.identity, e.session_id, e.protocol, e.round, 0, payload)
        return dataclasses.replace(e, payload=payload, signature=sig)
    return e


if __name__ == "__main__":  # not when multiprocessing's fork server re-imports this script
    sys.argv.pop(1)
    sessions.SessionManager._wrap = _evil_wrap  # type: ignore[method-assign]
    main()
