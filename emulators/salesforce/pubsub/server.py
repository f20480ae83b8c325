"""The Pub/Sub API's gRPC service (eventbus.v1.PubSub): GetTopic, GetSchema, Subscribe.

Per Salesforce's Pub/Sub API reference (developer.salesforce.com/docs/platform/pub-sub-api) and
its pubsub_api.proto (forcedotcom/pub-sub-api; the stubs as aiosfpubsub ships them):
- every call carries the REST session's OAuth token as metadata: accesstoken, instanceurl, tenantid;
- Subscribe is pull-based: the first FetchRequest names the topic and where to start (LATEST, the
  default; EARLIEST; CUSTOM after a replay id); num_requested adds to what the server may send, at
  most 100 outstanding ("If a client requests more than 100 events ... the server considers the
  number of requested events to be 100"); each FetchResponse says pending_num_requested; with
  nothing to send the server sends an empty FetchResponse with the latest replay id within 270 s;
- a replay id that is invalid, or older than the 72-hour retention, ends the call with
  INVALID_ARGUMENT and the error code sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted
  in the trailers ("Retry Long-Lived RPC Calls After an Error Occurs").
"""

from __future__ import annotations

import asyncio
import time

import grpc
from aiosfpubsub import pubsub_api_pb2 as pb2
from aiosfpubsub import pubsub_api_pb2_grpc as pb2_grpc

from emulators.salesforce.pubsub import avro_schema
from emulators.salesforce.pubsub.bus import TOPICS, replay_bytes, replay_int

MAX_REQUESTED = 100
KEEPALIVE_SECONDS = 270.0
CORRUPTED = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
AUTH_ERROR = "sfdc.platform.eventbus.grpc.service.auth.error"


class PubSubService(pb2_grpc.PubSubServicer):
    def __init__(self, emu, org_id: str, keepalive_seconds: float = KEEPALIVE_SECONDS) -> None:
        self.emu = emu
        self.bus = emu.pubsub
        self.org_id = org_id
        self.keepalive = keepalive_seconds
        self.schemas = {avro_schema.schema_id(name): name for name in TOPICS.values()}

    async def _auth(self, context: grpc.aio.ServicerContext) -> None:
        self.bus.rpcs += 1
        meta = {k: v for k, v in context.invocation_metadata() or ()}
        expires = self.emu.store.token_expiry(meta.get("accesstoken", ""))
        if expires is None or expires < time.time() or meta.get("tenantid") != self.org_id \
                or not meta.get("instanceurl"):
            context.set_trailing_metadata((("error-code", AUTH_ERROR),))
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "authentication failed")

    async def _topic(self, name: str, context) -> str:
        if name not in TOPICS:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"topic not found: {name}")
        return TOPICS[name]

    async def GetTopic(self, request, context):
        await self._auth(context)
        obj = await self._topic(request.topic_name, context)
        return pb2.TopicInfo(topic_name=request.topic_name, tenant_guid=self.org_id, can_publish=False,
                             can_subscribe=True, schema_id=avro_schema.schema_id(obj))

    async def GetSchema(self, request, context):
        await self._auth(context)
        obj = self.schemas.get(request.schema_id)
        if obj is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"schema not found: {request.schema_id}")
        import json

        return pb2.SchemaInfo(schema_json=json.dumps(avro_schema.schema_json(obj)), schema_id=request.schema_id)

    async def Subscribe(self, request_iterator, context):
        await self._auth(context)
        requests = request_iterator.__aiter__()
        try:
            first = await requests.__anext__()
        except StopAsyncIteration:
            return
        await self._topic(first.topic_name, context)
        topic = first.topic_name
        async with self.emu.write_lock:
            self.bus.purge()
            last, before_oldest = self.bus.bounds()
        if first.replay_preset == pb2.ReplayPreset.EARLIEST:
            position = before_oldest
        elif first.replay_preset == pb2.ReplayPreset.CUSTOM:
            asked = replay_int(first.replay_id)
            if asked is None or asked > last or asked < before_oldest:
                context.set_trailing_metadata((("error-code", CORRUPTED),))
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                    "The Replay ID validation failed: the replay ID is invalid or outside "
                                    "the retention window")
            position = asked
        else:
            position = last
        pending = min(MAX_REQUESTED, max(0, first.num_requested))
        wake = self.bus.waiter()

        async def more_requests() -> None:
            nonlocal pending
            async for req in requests:
                self.bus.rpcs += 1
                pending = min(MAX_REQUESTED, pending + max(0, req.num_requested))
                wake.set()

        reader = asyncio.ensure_future(more_requests())
        sent = 0
        try:
            while True:
                wake.clear()  # before reading: a change committed after the read wakes us
                rows = []
                if pending > 0:
                    async with self.emu.write_lock:
                        rows = self.bus.read_after(topic, position, pending)
                if rows:
                    position = rows[-1][0]
                    pending -= len(rows)
                    self.bus.rpcs += 1
                    yield pb2.FetchResponse(
                        events=[pb2.ConsumerEvent(event=pb2.ProducerEvent(id=event_id, schema_id=schema_id,
                                                                          payload=payload),
                                                  replay_id=replay_bytes(replay))
                                for replay, event_id, schema_id, payload in rows],
                        latest_replay_id=replay_bytes(position), pending_num_requested=pending)
                    sent += len(rows)
                    drop_after = self.bus.faults.get("drop_after")
                    if drop_after is not None and sent >= int(drop_after):
                        self.bus.faults.pop("drop_after", None)
                        await context.abort(grpc.StatusCode.UNAVAILABLE, "stream dropped (emulator fault)")
                    continue
                try:
                    await asyncio.wait_for(wake.wait(), self.keepalive)
                except asyncio.TimeoutError:
                    if reader.done():
                        return
                    yield pb2.FetchResponse(latest_replay_id=replay_bytes(position), pending_num_requested=pending)
        finally:
            reader.cancel()
            self.bus.forget(wake)


async def start(emu, org_id: str, host: str, port: int, cert: bytes, key: bytes) -> grpc.aio.Server:
    server = grpc.aio.server()
    pb2_grpc.add_PubSubServicer_to_server(PubSubService(emu, org_id), server)
    server.add_secure_port(f"{host}:{port}", grpc.ssl_server_credentials([(key, cert)]))
    await server.start()
    return server
