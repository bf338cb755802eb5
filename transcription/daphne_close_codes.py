"""Let Daphne send the registered close codes the protocols document (1008, 1009, 1012, 1013).

Autobahn's `sendClose` accepts only 1000 and 3000-4999 and raises on anything else, so under
Daphne a consumer closing with 1013 ("try again later") or 1008 ("policy violation") would
crash instead of closing. RFC 6455 section 7.4.1 defines these codes for endpoints to send;
they are written as the close frame directly. Other codes keep Daphne's behaviour.
"""

from __future__ import annotations

# Codes an endpoint may send (1004-1006 and 1015 are reserved and never sent on the wire).
REGISTERED = frozenset({1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


def install() -> None:
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:  # another ASGI server
        return
    original = WebSocketProtocol.serverClose
    if getattr(original, "registered_codes", False):
        return

    def server_close(self, code=None):
        if code in REGISTERED:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            original(self, code)

    server_close.registered_codes = True
    WebSocketProtocol.serverClose = server_close
