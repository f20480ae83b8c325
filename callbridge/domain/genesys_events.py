"""The call-ended event real Genesys Cloud sends, as the starter's intake reads it.

The event is the SDK model `CustomerEndDetailEventTopicCustomerEndEvent` (topic
`v2.detail.events.conversation.{id}.customer.end`). It reaches us two ways (docs/deploy.md):
the call-ended data action renders the event's top-level fields into a JSON object, or an
Amazon EventBridge API destination delivers the EventBridge envelope with the event as
`detail.eventBody`. The event says only that the customer's leg ended: agent, queue, times,
participant data and recording come from the conversation (callbridge/domain/conversation.py).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from callbridge.domain.models import ConversationId, ShortText

VOICE = "VOICE"
TOPIC_SUFFIX = ".customer.end"
TOPIC_PREFIX = "v2.detail.events.conversation."
PARTNER_SOURCE_PREFIX = "aws.partner/genesys.com/"
# What tells an EventBridge delivery from a data action's body: EventBridge's own envelope keys.
ENVELOPE_KEYS = ("detail-type", "detail")


class EventError(ValueError):
    """Bad input: the fields that are wrong, each with a message (the 4xx answer's body)."""

    def __init__(self, fields: list[dict[str, str]]) -> None:
        super().__init__("invalid payload")
        self.fields = fields


class CustomerEndEvent(BaseModel):
    """The event's top-level fields, named as the SDK model's attribute_map names them."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    conversation_id: ConversationId
    media_type: ShortText
    event_time: Annotated[StrictInt, Field(ge=0, le=253402300799999)] | None = None  # epoch ms
    participant_id: ShortText | None = None
    session_id: ShortText | None = None
    disconnect_type: ShortText | None = None
    direction: ShortText | None = None
    ani: ShortText | None = None
    dnis: ShortText | None = None
    interacting_duration_ms: Annotated[StrictInt, Field(ge=0)] | None = None
    division_id: ShortText | None = None
    external_contact_id: ShortText | None = None
    external_organization_id: ShortText | None = None
    provider: ShortText | None = None
    address_to: ShortText | None = None
    address_from: ShortText | None = None
    utilization_label: ShortText | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_absent(cls, value: object) -> object:
        # An Architect input left unset renders as "" in the data action's template.
        return None if value == "" else value

    @property
    def is_voice(self) -> bool:
        return self.media_type.upper() == VOICE

    @property
    def ended_at(self) -> datetime | None:
        if self.event_time is None:
            return None
        return datetime.fromtimestamp(self.event_time / 1000, tz=timezone.utc)


def _errors(exc: ValidationError, prefix: str) -> list[dict[str, str]]:
    return [{"field": prefix + (".".join(str(p) for p in err["loc"]) or "body"), "message": err["msg"]}
            for err in exc.errors(include_url=False, include_input=False)]


def is_envelope(data: dict[str, Any]) -> bool:
    return all(key in data for key in ENVELOPE_KEYS)


def parse_event(data: dict[str, Any]) -> CustomerEndEvent:
    """The data action's body (the event's fields at the top level)."""
    try:
        return CustomerEndEvent.model_validate(data)
    except ValidationError as exc:
        raise EventError(_errors(exc, "")) from None


def parse_envelope(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(topicName, eventBody) of an EventBridge event from the Genesys partner source."""
    source = data.get("source")
    if not isinstance(source, str) or not source.startswith(PARTNER_SOURCE_PREFIX):
        raise EventError([{"field": "source", "message": f"expected an {PARTNER_SOURCE_PREFIX}… event source"}])
    detail = data.get("detail")
    if not isinstance(detail, dict):
        raise EventError([{"field": "detail", "message": "expected an object"}])
    topic = detail.get("topicName")
    if not isinstance(topic, str) or not topic:
        raise EventError([{"field": "detail.topicName", "message": "expected a topic name"}])
    body = detail.get("eventBody")
    if not isinstance(body, dict):
        raise EventError([{"field": "detail.eventBody", "message": "expected an object"}])
    return topic, body


def parse_envelope_event(body: dict[str, Any]) -> CustomerEndEvent:
    try:
        return CustomerEndEvent.model_validate(body)
    except ValidationError as exc:
        raise EventError(_errors(exc, "detail.eventBody.")) from None


def is_customer_end_topic(topic: str) -> bool:
    return topic.startswith(TOPIC_PREFIX) and topic.endswith(TOPIC_SUFFIX)
