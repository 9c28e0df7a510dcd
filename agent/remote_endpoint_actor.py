"""The daemon-side endpoint actor of a remote (SSH or Docker) synchronization root.

It answers the same messages as ``agent.endpoint_actor.EndpointActor`` (``wire.messages.
endpoint``), so the session's reconciler, stager and transitioner never know the root is remote:
each request is relayed through the agent tunnel to a ``LocalEndpoint`` inside the remote agent
(``agent.serve_endpoint``) and its reply (or refusal) handed back.

Arguments (``ChildSpec.args``): the ``EndpointSettings`` fields (``root`` is the URL's path,
resolved against the remote home by the agent), ``notify`` (the reconciler's mailbox), the URL
(``protocol``, ``user``, ``host``, ``port``, ``environment``: captured Docker variables) and
``data_directory`` (the daemon's; agent bundles are cached in ``<data>/agents``).

The link: a background task connects the transport (``agent.transports.for_url``), gets the
agent (``agent.install.connect_agent``: installed on demand, progress logged and reported),
opens the endpoint (``EndpointOpen``) and then waits for the tunnel to close (heartbeats notice
a dead link within ``3 * HEARTBEAT_INTERVAL`` seconds). It then fails every request in flight
(``disconnected``), tells the reconciler (an ``EndpointChanged``, so a watching session notices
at once), and reconnects with back-off (``BACKOFF_FIRST`` doubling to ``BACKOFF_MAX``). A new
link is a new endpoint incarnation (new epoch): requests based on an older scan are refused as
``stale``, so a cycle cut by a reconnect is re-run from a fresh scan; nothing is applied twice.

Failure rules: while no link is up, ``EndpointHello`` waits up to ``HELLO_WAIT`` seconds for one,
then is refused (``disconnected``, with what the link is doing or why it last failed: "connecting
to ...: Installing agent...", "unable to connect to ...: host key ... is not known"); any other
request is refused at once. A connect attempt that fails is told to a hello as soon as it
happens, once: the hello waiting then (or the next one, if none was waiting) is refused
``unreachable`` with the attempt's reason (the text ``RemoteUnavailable`` gives), so the
reconciler can report it per side and ``sync create`` refuses without waiting out its deadline.
``probe_endpoint`` (used by ``sync resume``) connects once and raises ``RemoteUnavailable``
with the reason.

Prompts: with a ``prompts`` argument (the daemon's prompt mailbox, ``supervisor.prompt_relay``),
the SSH connect's questions (unknown host key, password) are sent there as ``PromptRelay``; the
daemon relays them to the terminal of a ``create``/``resume`` waiting on this session, or
answers "nobody" at once, so a background reconnect never waits for a user.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from typing import Optional

import zmq

from mutagen_actors.actors.runtime.actor import Actor
from mutagen_actors.wire import codec
from mutagen_actors.wire.codec import RawFrame
from mutagen_actors.wire.errors import ProtocolError
from mutagen_actors.wire.handling import Refused
from mutagen_actors.wire.messages import agent as am
from mutagen_actors.wire.messages import endpoint as m
from mutagen_actors.wire.messages.base import ErrorReply
from mutagen_actors.wire.tunnel import TunnelClosed

from .compaction import REFERENCE_MISS, DaemonSide, shallow_changes

URL_FIELDS = ("protocol", "user", "host", "port", "environment")
NOT_SETTINGS = ("notify", "data_directory", "prompts", "compression", *URL_FIELDS)
CONNECT_TIMEOUT = 5.0  # the SSH connect (TCP, key exchange, authentication), as Mutagen
AGENT_TIMEOUT = 180.0  # probe, install and start of the agent
OPEN_TIMEOUT = 60.0
REQUEST_TIMEOUT = 3600.0  # a dead link fails requests far sooner (heartbeats)
HEARTBEAT_INTERVAL = 1.0
HELLO_WAIT = 1.5  # below the reconciler's hello deadline
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 5.0
PROMPT_RELAY_TIMEOUT = 90.0  # above the daemon's own deadline for a user's answer
ROUTE = b"e"
_EMPTY_ARRAY = b"\x90"  # msgpack: [] (a ScanReply's from_transition when it refers to nothing)


class RemoteUnavailable(ConnectionError):
    """The remote endpoint cannot be reached or its agent cannot be started; the text says why."""


def agents_cache(data_directory: str) -> str:
    return os.path.join(data_directory, "agents")


def url_from_args(args: dict):
    """The ``supervisor.urls.Url`` of the remote root described by the actor's arguments."""
    from mutagen_actors.supervisor.urls import Url

    return Url(args["protocol"], args.get("user", ""), args.get("host", ""),
               int(args.get("port") or 0), args.get("root", ""),
               dict(args.get("environment") or {}))


def describe(url) -> str:
    user = f"{url.user}@" if url.user else ""
    if url.protocol == "docker":
        return f"docker://{user}{url.host}"
    port = f":{url.port}" if url.port else ""
    return f"{user}{url.host}{port}"


class Link:
    """Requests and replies over one agent tunnel (``attach`` it once the agent is connected).

    ``on_data`` is the tunnel's data handler: replies resolve their request, route-less messages
    (``EndpointChanged``) go to ``on_notice(payload)``. Every reply's envelope is read
    (``codec.peek``); a request made with ``raw_reply=True`` gets its reply header-only (a
    ``codec.RawFrame``, passed on as it came and validated by whoever finally decodes it),
    except an ``ErrorReply``, which is always decoded; any other reply is decoded and validated
    here. A reply whose envelope does not read fails every request in flight."""

    def __init__(self, on_notice=None):
        self.on_notice = on_notice
        self.agent = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._raw: set[int] = set()  # ids of the requests whose reply is wanted header-only

    def attach(self, agent) -> None:
        self.agent = agent

    def on_data(self, route: bytes, payload) -> None:
        if not route:
            if self.on_notice is not None:
                self.on_notice(bytes(payload))
            return
        try:
            raw = codec.peek(payload)
            if raw.reply_to in self._raw and raw.type_name != "ErrorReply":
                body = raw  # passed on undecoded (its receiver validates it)
            else:
                envelope = codec.decode(raw.frame)
                if envelope.reply_to == 0 and isinstance(envelope.body, ErrorReply):
                    # The agent could not read a request (so not its id either): every request
                    # in flight fails now, with the reason, instead of waiting out its deadline.
                    self.fail_all(f"the agent could not read a request of this daemon "
                                  f"({envelope.body.message}); it may run other code than the "
                                  f"daemon")
                    return
                body = envelope.body
                del envelope
        except ProtocolError as error:
            # An agent whose messages do not decode here runs other code than this daemon (a
            # reply's id cannot be read either): same as above.
            self.fail_all(f"the agent sent a message this daemon cannot read ({error}); "
                          f"it may run other code than the daemon")
            return
        future = self._pending.get(raw.reply_to)
        if future is not None and not future.done():
            future.set_result(body)

    async def request(self, body, timeout: float, *, raw_reply: bool = False):
        """The reply body (``ErrorReply`` included; a ``codec.RawFrame`` with ``raw_reply``
        unless it is an ``ErrorReply``); ``TunnelClosed`` when the link is gone,
        ``asyncio.TimeoutError`` past ``timeout``."""
        request_id = next(self._ids)
        return await self._exchange(codec.encode(body, id=request_id), b"", request_id, timeout,
                                    raw_reply)

    async def relay(self, raw: RawFrame, timeout: float, *, raw_reply: bool = False):
        """``request`` for a message received header-only (``codec.RawFrame``): its encoded body
        goes to the agent as it came, under this link's request id; the agent decodes and
        validates it (a body that does not validate is refused there: ``ErrorReply``)."""
        request_id = next(self._ids)
        return await self._exchange(raw.body, raw.head(id=request_id), request_id, timeout,
                                    raw_reply)

    async def _exchange(self, data, head, request_id: int, timeout: float, raw_reply: bool):
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        if raw_reply:
            self._raw.add(request_id)
        try:
            await self.agent.tunnel.send(ROUTE, data, head=head)
            del data
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(request_id, None)
            self._raw.discard(request_id)

    def fail_all(self, reason: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(TunnelClosed(reason))

    async def close(self, reason: str) -> None:
        self.fail_all(reason)
        if self.agent is not None:
            try:
                await asyncio.wait_for(self.agent.close(reason), 5)
            except (asyncio.TimeoutError, OSError, ConnectionError):
                pass
            transport = self.agent.transport
            try:
                await asyncio.wait_for(transport.close(), 5)
            except (asyncio.TimeoutError, OSError, ConnectionError):
                pass


async def open_link(url, *, cache_directory: str, progress, on_notice=None,
                    connect_timeout: float = CONNECT_TIMEOUT,
                    agent_timeout: float = AGENT_TIMEOUT, compression: bool = True,
                    **transport_options) -> Link:
    """Connect the transport and the agent (installing it if needed); ``RemoteUnavailable``
    (one line naming the remote and the reason) on any failure. ``compression``: offer lz4 on
    the tunnel (used when the agent accepts it; the session's ``--compression``)."""
    from .bundle import BundleError
    from .install import AgentError, connect_agent
    from .transports import TransportError, for_url
    from .transports.prompt_time import clocked, within

    description = describe(url)
    transport = None
    link = Link(on_notice)
    clock = clocked(transport_options.pop("prompter", None))
    if clock is not None:
        transport_options["prompter"] = clock
    try:
        progress(f"Connecting to {description}...")
        # A guard behind the transport's own deadline (``connect_timeout``, + 1 s when a
        # prompter is given), so its text ("no answer within 5 s") is the one that is seen.
        transport = await within(for_url(url, connect_timeout=connect_timeout,
                                         **transport_options),
                                 connect_timeout + 2.0, clock)
        if url.protocol == "ssh" and hasattr(transport, "connection"):
            from mutagen_actors.actors.forward.remote import lean_send_paths

            lean_send_paths(transport.connection)  # the tunnel's writes: as forwarding's
        agent = await asyncio.wait_for(
            connect_agent(transport, link.on_data, cache_directory=cache_directory,
                          progress=progress, heartbeat_interval=HEARTBEAT_INTERVAL,
                          compression=compression),
            agent_timeout)
    except asyncio.TimeoutError:
        await _close_quietly(transport)
        raise RemoteUnavailable(f"unable to connect to {description}: timed out") from None
    except (TransportError, AgentError, BundleError, OSError, ConnectionError) as error:
        await _close_quietly(transport)
        text = str(error) or type(error).__name__
        if description not in text:
            text = f"{description}: {text}"
        raise RemoteUnavailable(text) from None
    except BaseException:
        await _close_quietly(transport)
        raise
    link.attach(agent)
    return link


async def _close_quietly(transport) -> None:
    if transport is not None:
        try:
            await asyncio.wait_for(transport.close(), 5)
        except (asyncio.TimeoutError, OSError, ConnectionError):
            pass


async def probe_endpoint(url, *, cache_directory: str, log=None, steps: list | None = None,
                         prompter=None) -> str:
    """Connect to ``url`` once (installing the agent if needed), ask the agent who it is, close.
    Returns the agent's version; raises ``RemoteUnavailable``. Progress texts are logged and
    appended to ``steps`` (so a caller's timeout can say where it stopped). ``prompter``
    answers the SSH connect's questions (``agent.transports.Prompter``)."""
    def progress(text: str) -> None:
        if steps is not None:
            steps.append(text)
        if log is not None:
            log.info("remote endpoint", remote=describe(url), progress=text)

    link = await open_link(url, cache_directory=cache_directory, progress=progress,
                           prompter=prompter)
    try:
        reply = await link.request(am.AgentInfo(), timeout=OPEN_TIMEOUT)
    except (TunnelClosed, asyncio.TimeoutError) as error:
        raise RemoteUnavailable(f"{describe(url)}: the agent did not answer: {error}") from None
    finally:
        await link.close("probe done")
    if isinstance(reply, ErrorReply):
        raise RemoteUnavailable(f"{describe(url)}: the agent refused: {reply.message}")
    return reply.version


class _RelayedOf(type):
    """``isinstance(x, cls)``: ``x`` is a ``RawFrame`` of one of ``cls.NAMES`` (so the runtime's
    admission, which tests types, can tell relayed messages apart by their type name)."""

    def __instancecheck__(cls, instance) -> bool:
        return isinstance(instance, RawFrame) and instance.type_name in cls.NAMES


class RelayedContent(metaclass=_RelayedOf):
    """A ``StageChunks`` or ``Supply`` received header-only (may overlap, see below)."""

    NAMES = frozenset({"StageChunks", "Supply"})


class RemoteEndpointActor(Actor):
    # Staging's relays may overlap (``actors.runtime.admission``): while the agent writes one
    # StageChunks the next ones are relayed (the stager keeps six in flight). Order is kept: a
    # relay sends before its first await (tunnel writes are FIFO) and the agent's endpoint
    # handles requests one at a time in arrival order. Everything else (a Transition, a Scan,
    # a StageBegin even when relayed header-only) still runs alone, after every relay that
    # arrived before it has been answered.
    CONCURRENT = (m.StageChunks, m.Supply, RelayedContent)
    MAX_CONCURRENT = 6  # = the stager's WRITES_IN_FLIGHT (a smaller bound would cap it)
    # Relayed without decoding (``wire.sockets``: header-only receive): these are only passed
    # on (content, the items to stage, paths); the agent decodes and validates them (``relay``).
    # Replies: every reply but a ``TransitionReply`` (which ``agent.compaction`` expands) and a
    # ``ScanReply`` that refers to the last transition goes back undecoded too (``_answer``):
    # the requester decodes and validates it. Decoding big messages here only to encode them
    # again left megabytes of free small-object pools resident in this process.
    # A Transition too: relayed as it came when nothing in it would be compacted (the initial
    # sync's whole tree is then never decoded here), else decoded and compacted (``_transition``).
    RELAY = ("StageChunks", "Supply", "StageBegin", "FileSizes", "Transition")

    async def on_start(self) -> None:
        args = self.context.args
        self.side = args["side"]
        self.log = self.log.bind(side=self.side)
        self.url = url_from_args(args)
        self.description = describe(self.url)
        self.settings = {k: v for k, v in args.items() if k not in NOT_SETTINGS}
        self.compression = args.get("compression") or "lz4"
        self.cache_directory = agents_cache(args["data_directory"])
        self._notify = None
        if args.get("notify"):
            socket = self.context.zmq_context.socket(zmq.DEALER)
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.SNDHWM, 16)
            socket.connect(args["notify"])
            self._notify = socket
        self.link: Optional[Link] = None
        self.up = asyncio.Event()
        self.state = f"connecting to {self.description}"
        self.connects = 0
        self.failures = 0  # connect attempts that failed (told to a hello: ``_told``)
        self._told = 0
        self._failure = ""  # the reason of the last one
        self._attempt_ended = asyncio.Event()  # set (and replaced) when an attempt ends
        self.compaction = DaemonSide()
        self.prompts = args.get("prompts") or ""
        self.task = asyncio.get_running_loop().create_task(self._maintain())

    # ------------------------------------------------------------------ the link

    def _progress(self, text: str) -> None:
        self.log.info("remote endpoint", remote=self.description, progress=text)
        self.state = f"connecting to {self.description}: {text}"

    def _notice(self, payload: bytes) -> None:
        if self._notify is None:
            return
        try:
            self._notify.send(payload, zmq.NOBLOCK)
        except zmq.ZMQError:
            pass  # the reconciler is not there: it scans everything when it (re)starts

    def _changed(self) -> None:
        self._notice(codec.encode(m.EndpointChanged(self.side)))

    async def _maintain(self) -> None:
        delay = BACKOFF_FIRST
        while True:
            reason = ""
            link = None
            try:
                link = await open_link(self.url, cache_directory=self.cache_directory,
                                       compression=self.compression != "none",
                                       progress=self._progress, on_notice=self._notice,
                                       prompter=self._ask_daemon if self.prompts else None)
                reply = await link.request(am.EndpointOpen(self.settings), timeout=OPEN_TIMEOUT)
                if isinstance(reply, ErrorReply):
                    raise RemoteUnavailable(f"{self.description}: unable to open the root: "
                                            f"{reply.message}")
                self.connects += 1
                self._told = self.failures  # failures before this link are history
                self.link = link
                self.state = "connected"
                self.up.set()
                delay = BACKOFF_FIRST
                self.log.info("remote endpoint connected", remote=self.description,
                              root=reply.root, connects=self.connects)
                self._changed()
                closed = await link.agent.tunnel.wait_closed()
                reason = f"the link to {self.description} broke: {closed}"
            except RemoteUnavailable as error:
                reason = str(error)
            except (TunnelClosed, asyncio.TimeoutError) as error:
                reason = f"the link to {self.description} broke: {error or 'timed out'}"
            except Exception as error:  # noqa: BLE001 - the link task must never die
                self.log.exception("remote endpoint link failed", remote=self.description)
                reason = f"{self.description}: {type(error).__name__}: {error}"
            if self.link is None:  # the attempt failed (not a link that broke later)
                self.failures += 1
                self._failure = reason
                self._attempt_ended.set()
                self._attempt_ended = asyncio.Event()
            self.up.clear()
            self.link = None
            self.state = reason
            self.log.warning("remote endpoint disconnected", remote=self.description,
                             reason=reason, retry_in=delay)
            if link is not None:
                await link.close(reason)
            self._changed()  # a watching session's next cycle notices the link is down
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _ask_daemon(self, kind: str, message: str, echo: bool) -> Optional[str]:
        """Relay a connect question to the daemon (see the module docstring); None when nobody
        answers."""
        from mutagen_actors.wire.errors import RemoteError, RequestTimeout
        from mutagen_actors.wire.messages.control import PromptAnswer, PromptRelay
        from mutagen_actors.wire.sockets import DealerClient

        client = DealerClient(self.context.zmq_context, self.prompts, log=self.log)
        try:
            reply = await client.request(
                PromptRelay(self.context.args["session"], self.side, kind, message, echo),
                timeout=PROMPT_RELAY_TIMEOUT)
        except (RequestTimeout, RemoteError, ConnectionError) as error:
            self.log.warning("prompt not relayed", error=str(error))
            return None
        finally:
            client.close()
        return reply.answer if isinstance(reply, PromptAnswer) else None

    async def on_stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        if self.link is not None:
            await self.link.close("the session stopped")
        if self._notify is not None:
            self._notify.close(linger=0)

    async def _await_link(self) -> None:
        """For a hello while no link is up: wait up to ``HELLO_WAIT`` for one, or for a connect
        attempt to fail; a failed attempt no hello was told about yet is refused at once
        (``unreachable``, its reason), once."""
        if self._told == self.failures:
            waiters = [asyncio.ensure_future(self.up.wait()),
                       asyncio.ensure_future(self._attempt_ended.wait())]
            try:
                await asyncio.wait(waiters, timeout=HELLO_WAIT,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
                await asyncio.gather(*waiters, return_exceptions=True)
        if not self.up.is_set() and self._told < self.failures:
            self._told = self.failures
            raise Refused("unreachable", self._failure)

    # ------------------------------------------------------------------ requests

    async def handle(self, message):
        if not self.up.is_set() and isinstance(message, m.EndpointHello):
            await self._await_link()
        link = self.link
        if link is None or not self.up.is_set():
            raise Refused("disconnected", self.state)
        if isinstance(message, RawFrame) and message.type_name == "Transition":
            return await self._transition(link, message)
        if isinstance(message, RawFrame):
            return await self._relay(link, message)
        if not isinstance(message, m.Transition):  # no compaction: the reply goes back raw
            try:
                reply = await link.request(message, timeout=REQUEST_TIMEOUT, raw_reply=True)
            except (TunnelClosed, asyncio.TimeoutError) as error:
                raise self._link_failure(error, type(message).__name__) from None
            return self._answer(link, reply)
        request, message = message, self.compaction.outgoing(message)  # agent.compaction
        try:
            reply = await link.request(message, timeout=REQUEST_TIMEOUT)
            if message is not request and isinstance(reply, ErrorReply) \
                    and reply.code == REFERENCE_MISS:
                reply = await link.request(request, timeout=REQUEST_TIMEOUT)  # whole, once
        except (TunnelClosed, asyncio.TimeoutError) as error:
            raise self._link_failure(error, type(message).__name__) from None
        if isinstance(reply, ErrorReply):
            raise Refused(reply.code, reply.message)
        try:
            return self.compaction.incoming(request, reply, link)
        except ValueError as error:
            raise Refused("protocol", f"{self.description}: {error}") from None

    async def _transition(self, link: Link, raw: RawFrame):
        """A ``Transition`` received header-only: relayed as it came, when no compaction applies
        to it; else decoded (validated as the mailbox would have) and handled as any request.
        The agent's compact reply goes back as it is (the transitioner passes the compact form
        on, the reconciler expands it); it is expanded here too, against the changes read with
        their entries left encoded (``compaction.shallow_changes``), only to check it and to
        remember what was written (the next scan reply refers to it)."""
        changes = shallow_changes(raw.body)
        if changes is None:
            try:
                message = codec.decode(raw.frame).body
            except ProtocolError as error:
                raise Refused("protocol", str(error)) from None
            return await self.handle(message)
        self.compaction.relayed()
        try:
            reply = await link.relay(raw, timeout=REQUEST_TIMEOUT)
        except (TunnelClosed, asyncio.TimeoutError) as error:
            raise self._link_failure(error, raw.type_name) from None
        if isinstance(reply, ErrorReply):
            raise Refused(reply.code, reply.message)
        try:
            self.compaction.incoming(m.Transition("", changes), reply, link)
            return reply
        except ValueError as error:
            raise Refused("protocol", f"{self.description}: {error}") from None

    async def _relay(self, link: Link, raw: RawFrame):
        """A message received header-only (``RELAY``): passed on as it came, its reply (or the
        agent's refusal, e.g. a body that does not validate there) handed back. No compaction
        applies to these (``agent.compaction`` rewrites only ``Transition`` and its replies)."""
        if raw.type_name not in self.RELAY:
            raise Refused("protocol", f"{raw.type_name} is not relayed")
        try:
            reply = await link.relay(raw, timeout=REQUEST_TIMEOUT, raw_reply=True)
        except (TunnelClosed, asyncio.TimeoutError) as error:
            raise self._link_failure(error, raw.type_name) from None
        return self._answer(link, reply)

    def _answer(self, link: Link, reply):
        """The answer to a request sent with ``raw_reply``: an ``ErrorReply`` is refused with its
        code; a ``ScanReply`` that refers to the last transition (``from_transition``, see
        ``agent.compaction``) is decoded, validated and expanded; any other reply (a
        ``RawFrame``) goes back as it came."""
        if isinstance(reply, ErrorReply):
            raise Refused(reply.code, reply.message)
        if not isinstance(reply, RawFrame) or reply.type_name != "ScanReply":
            return reply
        try:
            references = codec.raw_field(reply, m.ScanReply, "from_transition")
            if references is None or bytes(references) == _EMPTY_ARRAY:
                self.compaction.scan_replied()  # nothing referred to: the memory is spent
                return reply
            scanned = codec.decode(reply.frame).body
            if not isinstance(scanned, m.ScanReply):
                raise ProtocolError(f"a ScanReply decoded as {type(scanned).__name__}")
            return self.compaction.incoming(None, scanned, link)
        except (ProtocolError, ValueError) as error:
            raise Refused("protocol", f"{self.description}: {error}") from None

    def _link_failure(self, error: BaseException, what: str) -> Refused:
        """The refusal for a request ``what`` whose link broke or timed out."""
        if isinstance(error, TunnelClosed):
            return Refused("disconnected", f"the link to {self.description} broke: {error}")
        return Refused("timeout", f"{what} got no answer from {self.description}")
