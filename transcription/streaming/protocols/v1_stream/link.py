"""The control socket's link to its audio socket: pairing, and commands that wait for the audio."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

log = logging.getLogger(__name__)

BARRIER_COMMANDS = ("pause_stream", "stop_stream")
# A command waits for the audio socket to hand over the audio it had already received: at most
# this long without any audio arriving (a control socket working through a backlog keeps waiting).
FLUSH_TIMEOUT_S = 3.0


class AudioLink:
    """Mixed into the control consumer, which provides `_run(command)`, `lease` and the channel layer."""

    def link_init(self) -> None:
        self.audio_channel: str | None = None
        self._waiting: list[dict[str, Any]] | None = None
        self._flush_token: str | None = None
        self._audio_seen_at = 0.0

    def audio_arrived(self) -> None:
        self._audio_seen_at = asyncio.get_running_loop().time()

    async def after_the_audio(self, command: dict[str, Any]) -> bool:
        """Hold `command` until the audio socket has handed over what it received; False: run it now.

        Audio and commands travel on two sockets: pause and stop take effect after the audio the audio
        socket had already received, so nothing sent before them is lost. Start and resume apply at
        once, so no audio sent after them is dropped.
        """
        if self._waiting is not None:
            self._waiting.append(command)
            return True
        if self.audio_channel is None or command["command"] not in BARRIER_COMMANDS:
            return False
        self._waiting, self._flush_token = [command], uuid.uuid4().hex
        await self.channel_layer.send(
            self.audio_channel, {"type": "v1stream.flush", "token": self._flush_token}
        )
        self.lease.spawn(self._flush_deadline(self._flush_token))
        return True

    async def _release(self) -> None:
        waiting, self._waiting, self._flush_token = self._waiting or [], None, None
        for command in waiting:
            if self.lease.finishing:
                return
            await self._run(command)

    async def _flush_deadline(self, token: str) -> None:
        loop = asyncio.get_running_loop()
        self._audio_seen_at = loop.time()
        while self._flush_token == token:
            left = self._audio_seen_at + FLUSH_TIMEOUT_S - loop.time()
            if left <= 0:
                log.warning("/v1/stream %s: audio socket did not confirm a flush", self.lease.client_id)
                await self._release()
                return
            await asyncio.sleep(left)

    async def v1stream_flushed(self, message: dict[str, Any]) -> None:
        if message["token"] == self._flush_token:
            await self._release()

    async def v1stream_hello(self, message: dict[str, Any]) -> None:
        reply = message["reply"]
        if self.lease.finishing or self.db_session is None:
            return
        if self.audio_channel is not None and self.audio_channel != reply:
            await self.channel_layer.send(reply, {"type": "v1stream.paired", "ok": False})
            return
        self.audio_channel = reply
        await self.channel_layer.send(
            reply, {"type": "v1stream.paired", "ok": True, "control": self.channel_name}
        )

    async def v1stream_gone(self, message: dict[str, Any]) -> None:
        if message["reply"] == self.audio_channel:
            self.audio_channel = None
            if self._flush_token is not None:
                await self._release()

    async def unlink(self) -> None:
        if getattr(self, "audio_channel", None):
            await self.channel_layer.send(self.audio_channel, {"type": "v1stream.control_gone"})
