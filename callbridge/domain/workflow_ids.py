"""Workflow ids (each one the lock on its entity) and the search attributes, named in one place.

Ids carry platform ids only (a conversation id, a request id), never a phone number, an email
or a name. Activities that start or look up workflows use these names instead of importing the
workflows above them.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

CALL_LOGGING_WORKFLOW = "CallLoggingWorkflow"

CONVERSATION_ID = SearchAttributeKey.for_keyword("CallbridgeConversationId")
CONTACT_ID = SearchAttributeKey.for_keyword("CallbridgeContactId")
OUTCOME = SearchAttributeKey.for_keyword("CallbridgeOutcome")


def call_log_id(conversation_id: str) -> str:
    return f"call-log-{conversation_id}"


def recording_link_id(conversation_id: str) -> str:
    return f"recording-link-{conversation_id}"


def gdpr_erasure_id(request_id: str) -> str:
    return f"gdpr-erasure-{request_id}"
