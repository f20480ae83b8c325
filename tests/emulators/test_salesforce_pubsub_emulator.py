"""Contract test of the Salesforce emulator's Pub/Sub API with a client nobody here wrote:
aiosfpubsub (its gRPC stubs, its Client, its Avro decoding with the `avro` library).

The bitmap decoding below is Salesforce's own algorithm (forcedotcom/pub-sub-api,
python/util/ChangeEventHeaderUtility.py): bit i of the hex number names top-level field i;
"<i>-0x.." names sub-fields of compound field i.
"""

from __future__ import annotations

import asyncio
import json

import grpc
import httpx
import pytest
from aiosfpubsub import Client

from tests.helpers import tls

CONTACT_TOPIC = "/data/ContactChangeEvent"


class EmulatorClient(Client):
    """aiosfpubsub's client trusting the emulator's CA, with the REST session's token as metadata
    (its own auth() is the SOAP login, which the emulator doesn't serve)."""

    ca_pem: bytes = b""

    @classmethod
    def _default_channel_credentials(cls) -> grpc.ChannelCredentials:  # type: ignore[override]
        return grpc.ssl_channel_credentials(cls.ca_pem)


def _token(salesforce) -> dict:
    return httpx.post(f"{salesforce.instance_url}/services/oauth2/token", verify=tls(salesforce),
                      data={"grant_type": "client_credentials", "client_id": salesforce.client_id,
                            "client_secret": salesforce.client_secret}).json()


@pytest.fixture(scope="module")
def client(salesforce) -> EmulatorClient:
    EmulatorClient.ca_pem = salesforce.ca_file.read_bytes()
    host, port = salesforce.pubsub_endpoint.split(":")
    c = EmulatorClient(salesforce.instance_url, "unused", "unused", host, int(port))
    token = _token(salesforce)
    c.metadata = (("accesstoken", token["access_token"]), ("instanceurl", token["instance_url"]),
                  ("tenantid", token["id"].split("/")[-2]))
    return c


def _names(schema, bitmap_fields: list[str]) -> list[str]:
    fields = schema["fields"]
    out = []
    for item in bitmap_fields:
        if item.startswith("0x"):
            bits = bin(int(item, 16))[2:][::-1]
            out += [fields[i]["name"] for i, b in enumerate(bits) if b == "1"]
        else:
            parent, nested = item.split("-")
            parent_field = fields[int(parent)]
            record = parent_field["type"][1]
            bits = bin(int(nested, 16))[2:][::-1]
            out += [f"{parent_field['name']}.{record['fields'][i]['name']}" for i, b in enumerate(bits) if b == "1"]
    return out


async def _collect(client: EmulatorClient, replay_type: str, replay_id: bytes, num_requested: int,
                   want: int, timeout: float = 20.0) -> list:
    """Fetch responses until `want` events arrived (aiosfpubsub asks again every 5 s)."""
    responses: list = []

    def on_response(resp, _client) -> None:
        responses.append(resp)

    async def run() -> None:
        task = asyncio.ensure_future(client.subscribe(CONTACT_TOPIC, replay_type, replay_id, num_requested,
                                                      on_response))
        try:
            while sum(len(r.events) for r in responses) < want:
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
    await asyncio.wait_for(run(), timeout)
    return responses


def _last_replay(salesforce) -> int:
    return httpx.get(f"{salesforce.instance_url}/_emulator/pubsub", verify=tls(salesforce)).json()["last_replay"]


def test_topic_schema_and_change_events(client, salesforce, sf):
    topic = client.get_topic(CONTACT_TOPIC)
    assert topic.can_subscribe and topic.schema_id
    schema_text = client.get_schema_json(topic.schema_id)
    schema = json.loads(schema_text)
    assert schema["name"] == "ContactChangeEvent" and schema["fields"][0]["name"] == "ChangeEventHeader"

    start = _last_replay(salesforce)
    sf.session.headers["Sforce-Call-Options"] = "client=contract-test"
    try:
        cid = sf.Contact.create({"FirstName": "Ada", "LastName": "Pubsub", "Phone": "+14155550142",
                                 "Title": "Engineer"})["id"]
        sf.Contact.update(cid, {"Phone": "+14155550143", "Title": None, "LastName": "Pubsub-Two"})
    finally:
        del sf.session.headers["Sforce-Call-Options"]
    sf.Contact.delete(cid)
    httpx.post(f"{salesforce.instance_url}/_emulator/undelete/Contact/{cid}", verify=tls(salesforce)) \
        .raise_for_status()

    responses = asyncio.run(_collect(client, "CUSTOM", start.to_bytes(8, "big"), 100, 4))
    events = [e for r in responses for e in r.events]
    decoded = [client.decode(schema_text, e.event.payload) for e in events]
    headers = [d["ChangeEventHeader"] for d in decoded]
    assert [h["changeType"] for h in headers] == ["CREATE", "UPDATE", "DELETE", "UNDELETE"]
    assert all(h["recordIds"] == [cid] and h["entityName"] == "Contact" for h in headers)
    assert headers[0]["changeOrigin"].endswith(";client=contract-test")
    assert headers[0]["changeOrigin"].startswith("com/salesforce/api/rest/")
    assert ";client=" not in headers[2]["changeOrigin"]
    create, update = decoded[0], decoded[1]
    assert create["Phone"] == "+14155550142" and create["Name"]["LastName"] == "Pubsub"
    assert isinstance(create["CreatedDate"], int)  # epoch milliseconds
    assert sorted(_names(schema, headers[1]["changedFields"])) == ["LastModifiedDate", "Name.LastName", "Phone"]
    assert _names(schema, headers[1]["nulledFields"]) == ["Title"]
    assert update["Phone"] == "+14155550143" and update["Email"] is None and update["Title"] is None
    assert decoded[2]["Phone"] is None  # a DELETE carries no field values
    assert decoded[3]["Phone"] == "+14155550143"  # an UNDELETE carries them all
    assert [int.from_bytes(e.replay_id, "big") for e in events] == sorted(int.from_bytes(e.replay_id, "big")
                                                                        for e in events)


def test_flow_control_latest_and_earliest(client, salesforce, sf):
    start = _last_replay(salesforce)
    ids = [sf.Contact.create({"LastName": f"Flow{i}"})["id"] for i in range(3)]
    responses = asyncio.run(_collect(client, "CUSTOM", start.to_bytes(8, "big"), 1, 1))
    assert len(responses[0].events) == 1 and responses[0].pending_num_requested == 0
    earliest = asyncio.run(_collect(client, "EARLIEST", b"", 100, 3))
    assert sum(len(r.events) for r in earliest) >= 3

    async def latest_sees_only_new() -> list:
        got: list = []
        task = asyncio.ensure_future(client.subscribe(CONTACT_TOPIC, "LATEST", b"", 100,
                                                      lambda r, _c: got.append(r)))
        await asyncio.sleep(1.0)
        await asyncio.to_thread(sf.Contact.update, ids[0], {"Title": "Latest"})
        for _ in range(200):
            if got:
                break
            await asyncio.sleep(0.05)
        task.cancel()
        return got
    got = asyncio.run(latest_sees_only_new())
    assert len(got[0].events) == 1
    assert int.from_bytes(got[0].events[0].replay_id, "big") > start + 3


def test_bad_token_and_unknown_topic(client, salesforce):
    bad = EmulatorClient(salesforce.instance_url, "u", "p", *salesforce.pubsub_endpoint.split(":"))
    bad.metadata = (("accesstoken", "nope"), ("instanceurl", salesforce.instance_url), ("tenantid", "00D"))
    with pytest.raises(grpc.RpcError) as err:
        bad.get_topic(CONTACT_TOPIC)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as err:
        client.get_topic("/data/NoSuchChangeEvent")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_gap_events_and_dropped_stream(client, salesforce, sf):
    base = salesforce.instance_url
    start = _last_replay(salesforce)
    httpx.post(f"{base}/_emulator/pubsub/faults", json={"gap": "gap"}, verify=tls(salesforce))
    try:
        cid = sf.Contact.create({"LastName": "Gap"})["id"]
    finally:
        httpx.delete(f"{base}/_emulator/pubsub/faults", verify=tls(salesforce))
    sf.Contact.update(cid, {"Title": "after the gap"})
    schema_text = client.get_schema_json(client.get_topic(CONTACT_TOPIC).schema_id)
    events = [e for r in asyncio.run(_collect(client, "CUSTOM", start.to_bytes(8, "big"), 100, 2)) for e in r.events]
    gap = client.decode(schema_text, events[0].event.payload)
    assert gap["ChangeEventHeader"]["changeType"] == "GAP_CREATE" and gap["Name"] is None
    assert gap["ChangeEventHeader"]["recordIds"] == [cid]

    httpx.post(f"{base}/_emulator/pubsub/faults", json={"drop_after": 1}, verify=tls(salesforce))
    with pytest.raises(grpc.aio.AioRpcError) as err:  # the stream ends after the first batch
        asyncio.run(_collect(client, "CUSTOM", start.to_bytes(8, "big"), 100, 3))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_replay_id_past_retention_is_refused(client, salesforce, sf):
    sf.Contact.create({"LastName": "Old"})
    start = _last_replay(salesforce) - 1
    httpx.post(f"{salesforce.instance_url}/_emulator/pubsub/age", json={"hours": 73},
               verify=tls(salesforce)).raise_for_status()
    sf.Contact.create({"LastName": "New"})
    with pytest.raises(grpc.aio.AioRpcError) as err:
        asyncio.run(_collect(client, "CUSTOM", start.to_bytes(8, "big"), 100, 1))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(err.value.trailing_metadata())["error-code"] == \
        "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        asyncio.run(_collect(client, "CUSTOM", b"\x01\x02", 100, 1))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_composite_requests_call_options_name_the_origin_of_its_writes(client, salesforce, sf):
    # Callbridge logs a call with one composite request; the contact update inside it is its own
    # write, and must not come back to it as someone else's change (the listener's echo guard).
    cid = sf.Contact.create({"FirstName": "Ada", "LastName": "Composite"})["id"]
    start = _last_replay(salesforce)
    version = sf.sf_version
    sf.session.headers["Sforce-Call-Options"] = "client=contract-test"
    try:
        sf.restful("composite", method="POST", json={"allOrNone": False, "compositeRequest": [
            {"method": "PATCH", "url": f"/services/data/v{version}/sobjects/Contact/{cid}",
             "referenceId": "contact", "body": {"Title": "Logged"}}]})
        sf.restful("composite", method="POST", json={"allOrNone": False, "compositeRequest": [
            {"method": "PATCH", "url": f"/services/data/v{version}/sobjects/Contact/{cid}",
             "referenceId": "contact", "body": {"Title": "Logged again"}}]})
    finally:
        del sf.session.headers["Sforce-Call-Options"]
    schema_text = client.get_schema_json(client.get_topic(CONTACT_TOPIC).schema_id)
    responses = asyncio.run(_collect(client, "CUSTOM", start.to_bytes(8, "big"), 100, 2))
    headers = [client.decode(schema_text, e.event.payload)["ChangeEventHeader"] for r in responses for e in r.events]
    assert [h["changeType"] for h in headers] == ["UPDATE", "UPDATE"]
    assert all(h["changeOrigin"].endswith(";client=contract-test") for h in headers), headers
