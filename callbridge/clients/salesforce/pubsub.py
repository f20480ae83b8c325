"""One Pub/Sub API subscription: gRPC over TLS, the REST session's OAuth token as metadata,
schemas fetched once per schema id, Avro decoded with fastavro, flow control by num_requested.

The stubs are Salesforce's pubsub_api.proto as the aiosfpubsub package ships them (README).
"""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass, field
from typing import AsyncIterator

import fastavro
import grpc
from aiosfpubsub import pubsub_api_pb2 as pb2
from aiosfpubsub import pubsub_api_pb2_grpc as pb2_grpc

from callbridge.clients.salesforce.connection import SalesforceConnection
from callbridge.clients.salesforce.change_bitmap import field_names
from callbridge.core.settings import Settings

CORRUPTED_REPLAY = "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"


# The change event channels Callbridge subscribes to: the caller-ID index and contact sync read both.
TOPICS = ("/data/ContactChangeEvent", "/data/AccountChangeEvent")


@dataclass
class Change:
    """One decoded change event: what changed, and the new values the event carries (an
    update's changed fields and LastModifiedDate; datetimes as epoch milliseconds)."""

    entity: str
    change_type: str
    record_ids: list[str]
    origin: str
    changed_fields: list[str] = field(default_factory=list)
    nulled_fields: list[str] = field(default_factory=list)
    values: dict = field(default_factory=dict)


def replay_id_refused(err: grpc.aio.AioRpcError) -> bool:
    """The stored replay id is invalid or past the 72-hour retention (Pub/Sub API error code)."""
    codes = [v for k, v in (err.trailing_metadata() or ()) if k == "error-code"]
    return err.code() == grpc.StatusCode.INVALID_ARGUMENT and (CORRUPTED_REPLAY in codes or "replay" in
                                                               (err.details() or "").lower())


class PubSubClient:
    def __init__(self, settings: Settings, connection: SalesforceConnection) -> None:
        self._settings = settings
        self._sf = connection
        ca = settings.salesforce_ca_file
        creds = grpc.ssl_channel_credentials(ca.read_bytes() if ca and ca.exists() else None)
        self._channel = grpc.aio.secure_channel(settings.salesforce_pubsub_endpoint, creds)
        self._stub = pb2_grpc.PubSubStub(self._channel)
        self._schemas: dict[str, tuple[dict, object]] = {}
        self.calls = 0  # Pub/Sub API calls made (bench: requests per change)

    async def metadata(self, stale: bool = False) -> tuple[tuple[str, str], ...]:
        def login():
            sf = self._sf.client(stale=self._sf.client() if stale else None)
            return sf.session_id, f"https://{sf.sf_instance}", self._sf.identity_url.rstrip("/").split("/")[-2]
        token, instance, tenant = await asyncio.to_thread(login)
        return (("accesstoken", token), ("instanceurl", instance), ("tenantid", tenant))

    async def close(self) -> None:
        await self._channel.close()

    async def schema(self, schema_id: str, meta) -> tuple[dict, object]:
        if schema_id not in self._schemas:
            self.calls += 1
            info = await self._stub.GetSchema(pb2.SchemaRequest(schema_id=schema_id), metadata=meta)
            parsed_json = json.loads(info.schema_json)
            self._schemas[schema_id] = (parsed_json, fastavro.parse_schema(parsed_json))
        return self._schemas[schema_id]

    async def topic(self, topic: str, meta) -> pb2.TopicInfo:
        self.calls += 1
        return await self._stub.GetTopic(pb2.TopicRequest(topic_name=topic), metadata=meta)

    async def decode(self, event: pb2.ConsumerEvent, meta) -> Change:
        schema_json, parsed = await self.schema(event.event.schema_id, meta)
        body = fastavro.schemaless_reader(io.BytesIO(event.event.payload), parsed)
        header = body.pop("ChangeEventHeader")
        return Change(entity=header["entityName"], change_type=header["changeType"],
                      record_ids=list(header["recordIds"]), origin=header.get("changeOrigin") or "",
                      changed_fields=field_names(schema_json, list(header.get("changedFields") or [])),
                      nulled_fields=field_names(schema_json, list(header.get("nulledFields") or [])),
                      values={k: v for k, v in body.items() if v is not None})

    async def subscribe(self, topic: str, replay_id: bytes | None, meta) -> AsyncIterator[pb2.FetchResponse]:
        """FetchResponses from after replay_id (LATEST without one); asks for more once a batch is done."""
        batch = self._settings.listen_batch_size
        requests: asyncio.Queue = asyncio.Queue()
        first = pb2.FetchRequest(topic_name=topic, num_requested=batch,
                                 replay_preset=pb2.ReplayPreset.CUSTOM if replay_id else pb2.ReplayPreset.LATEST,
                                 replay_id=replay_id or b"")
        await requests.put(first)

        async def request_stream():
            while True:
                req = await requests.get()
                self.calls += 1
                yield req

        call = self._stub.Subscribe(request_stream(), metadata=meta)
        try:
            async for response in call:
                yield response
                if response.events and response.pending_num_requested == 0:
                    await requests.put(pb2.FetchRequest(topic_name=topic, num_requested=batch))
        finally:
            call.cancel()
