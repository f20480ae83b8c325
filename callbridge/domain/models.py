"""The messages Callbridge passes around: webhook payloads, workflow inputs and results.

Pydantic models, serialised by Temporal's pydantic data converter.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator
from pydantic.alias_generators import to_camel

# What call logging does with a caller no contact matches (setting CALLBRIDGE_UNKNOWN_CALLER_POLICY).
UnknownCallerPolicy = Literal["skip", "create_contact", "unknown_account"]


# Conversation ids become workflow ids: a safe, PII-free alphabet only.
ConversationId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
SalesforceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")]
ShortText = Annotated[str, Field(max_length=255)]


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class CallEndedEvent(_Wire):
    """The seed's conversation-ended webhook payload: what a relay can send (Genesys has no such
    webhook; its customer.end event reaches POST /webhooks/genesys/events)."""

    conversation_id: ConversationId
    participant_id: ShortText | None = None
    conversation_type: ShortText
    caller_id: Annotated[str, Field(max_length=64)]
    callee_id: Annotated[str, Field(max_length=64)] | None = None
    direction: Literal["INBOUND", "OUTBOUND"]
    start_time: AwareDatetime
    end_time: AwareDatetime
    duration_seconds: Annotated[StrictInt, Field(ge=0, le=7 * 24 * 3600)]
    recording_id: ShortText | None = None
    agent_id: ShortText | None = None
    agent_name: ShortText | None = None
    queue_id: ShortText | None = None
    queue_name: ShortText | None = None
    interaction_id: ShortText | None = None
    attributes: dict[Annotated[str, Field(max_length=128)], Annotated[str, Field(max_length=1024)]] = Field(
        default_factory=dict, max_length=100
    )

    @field_validator("direction", mode="before")
    @classmethod
    def _upper_direction(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _end_after_start(self) -> "CallEndedEvent":
        if self.end_time < self.start_time:
            raise ValueError("endTime is before startTime")
        return self

    @property
    def customer_number(self) -> str | None:
        """The customer's side of the call: the caller inbound, the callee outbound."""
        return self.caller_id if self.direction == "INBOUND" else self.callee_id


class CallLoggingInput(BaseModel):
    """Everything the workflow needs, settings included, so a replay never reads config.

    Either the whole call (`event`: the signed relay webhook) or only its conversation id (a
    call-ended event from Genesys, the reconciliation): the workflow then hydrates the call from
    the Conversations API first. The customer's number is normalised outside the workflow
    (`for_event`, or the hydration activity), keeping phonenumbers' lazily loaded metadata out
    of the workflow sandbox.
    """

    event: CallEndedEvent | None = None
    conversation_id: ConversationId | None = None
    ended_at: datetime | None = None  # the event's eventTime, for a conversation not yet showing its end
    customer_e164: str | None = None
    unknown_caller_policy: UnknownCallerPolicy = "skip"
    default_region: str = "US"
    unknown_caller_account_name: str = "Unknown callers"
    recording_budget_seconds: float = 3.0
    # The lasting recording link (workflows/recording_link.py): the starter's public URL, and
    # how long a recording still transcoding at call end is waited for.
    recording_link_base: str | None = None
    recording_follow_up_hours: float = 6.0
    recording_first_check_seconds: float = 10.0

    @model_validator(mode="after")
    def _a_call(self) -> "CallLoggingInput":
        if self.event is None and self.conversation_id is None:
            raise ValueError("either event or conversation_id is required")
        return self

    @classmethod
    def for_event(cls, event: CallEndedEvent, default_region: str = "US", **policy) -> "CallLoggingInput":
        from callbridge.domain.phone import to_e164

        return cls(event=event, customer_e164=to_e164(event.customer_number, default_region),
                   default_region=default_region, **policy)

    @classmethod
    def for_conversation(cls, conversation_id: str, default_region: str = "US", *,
                         ended_at: datetime | None = None, **policy) -> "CallLoggingInput":
        return cls(conversation_id=conversation_id, ended_at=ended_at, default_region=default_region, **policy)


class HydrationRequest(BaseModel):
    conversation_id: ConversationId
    default_region: str = "US"
    ended_at: datetime | None = None


class HydratedCall(BaseModel):
    event: CallEndedEvent
    customer_e164: str | None = None


class PreparedCall(BaseModel):
    """The call ready to log: its details, the recording's link, the contacts already known."""

    event: CallEndedEvent
    customer_e164: str | None = None
    recording_link: str | None = None
    known: list["ContactMatch"] = Field(default_factory=list)
    # A recording still transcoding: linked from the Task by RecordingLinkWorkflow once ready.
    recording_follow_up: "RecordingFollowUp | None" = None


class KnownCallerRequest(BaseModel):
    """What the call already tells about its caller: the IVR's participant data, the number."""

    contact_id: str | None = None
    contact_name: str | None = None
    account_id: str | None = None
    account_name: str | None = None
    e164: str | None = None


class ContactMatch(BaseModel):
    """A Salesforce contact that matched a caller, with what ranking needs."""

    id: SalesforceId
    name: str
    account_id: str | None = None
    account_name: str | None = None
    last_call_date: datetime | None = None
    last_modified_date: datetime | None = None
    matched_field: str | None = None  # Phone, MobilePhone, HomePhone, OtherPhone, or None by id


class PhoneLookup(BaseModel):
    e164: str
    default_region: str


CallOutcome = Literal[
    "logged",                      # Task on the matched contact
    "logged_new_contact",          # unknown caller, contact created (policy create_contact)
    "logged_unknown_account",      # unknown caller, Task on the "Unknown callers" account
    "skipped_unknown_caller",      # unknown caller, nothing written (policy skip)
]


class LogCallRequest(BaseModel):
    """One composite request: upsert the Task by conversation id, update the contact."""

    conversation_id: ConversationId
    task: dict[str, object]
    contact_id: str | None = None
    contact_update: dict[str, object] | None = None
    new_contact: dict[str, object] | None = None  # create this contact and log on it


class LogCallResult(BaseModel):
    task_id: str
    task_created: bool
    contact_id: str | None = None
    contact_updated: bool = False
    contact_update_error: str | None = None


class CallLoggingResult(BaseModel):
    outcome: CallOutcome
    conversation_id: str
    task_id: str | None = None
    contact_id: str | None = None
    account_id: str | None = None
    other_contact_ids: list[str] = Field(default_factory=list)
    recording_link: str | None = None
    contact_update_error: str | None = None


class RecordingRequest(BaseModel):
    conversation_id: ConversationId
    recording_id: ShortText
    timeout_seconds: float = 3.0


class RecordingFollowUp(BaseModel):
    """A recording not ready at call end, to link from its call's Task once it is."""

    conversation_id: ConversationId
    recording_id: ShortText
    link: str
    bound_hours: float = 6.0
    first_check_seconds: float = 10.0


class RecordingLinkLine(BaseModel):
    conversation_id: ConversationId
    line: str


class IndexRefreshRequest(BaseModel):
    full: bool = False
    lookback_seconds: int = 120


class IndexRefreshResult(BaseModel):
    applied: int
    removed: int
    full: bool
    watermark: str


PreparedCall.model_rebuild()


# CallReconciliationWorkflow's input and result (the schedule starts it every few minutes).
class ReconciliationRequest(BaseModel):
    lookback_seconds: int = 2 * 3600
    settle_seconds: int = 120


class ReconciliationResult(BaseModel):
    ended: int = 0  # ended calls the window held
    started: int = 0  # CallLoggingWorkflows this run started (missed calls)
    already_handled: int = 0  # a workflow with that id ran or runs: the webhook's, or an earlier run's
    too_recent: int = 0  # ended within settle_seconds: left to the call-ended event
    skipped: int = 0  # not a call the webhook would log (no customer leg, no agent) or unreadable
    started_conversation_ids: list[str] = Field(default_factory=list)
