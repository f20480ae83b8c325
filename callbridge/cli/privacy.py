"""`callbridge gdpr|consent|export|breach|retention` (docs/privacy.md)."""

from __future__ import annotations

import typer

from callbridge.cli.output import console
from callbridge.core.settings import get_settings

from callbridge.cli.output import print_json as _print_json


gdpr = typer.Typer(help="GDPR erasure requests.", no_args_is_help=True)
consent = typer.Typer(help="Consent records (Contact_Consent__c).", no_args_is_help=True)
export = typer.Typer(help="Exports with PII masked.", no_args_is_help=True)
breach = typer.Typer(help="Breach response: what a compromised component held.", no_args_is_help=True)
retention = typer.Typer(help="Recording retention and legal holds.", no_args_is_help=True)
GROUPS = {"gdpr": gdpr, "consent": consent, "export": export, "breach": breach, "retention": retention}


@gdpr.command("erase")
def gdpr_erase(
    email: str = typer.Option(None, help="The person's email."),
    phone: str = typer.Option(None, help="The person's phone number."),
    contact_id: str = typer.Option(None, "--contact-id", help="Their Salesforce contact id."),
    wait: bool = typer.Option(False, help="Wait for the certificate."),
) -> None:
    """Start an erasure; prints the request id (random, never derived from the person)."""
    import asyncio

    from callbridge.ops.privacy_requests import ErasureRequestError, start_erasure
    from callbridge.core.temporal import connect
    from workflows.gdpr_erasure import GdprErasureWorkflow, workflow_id

    settings = get_settings()

    async def run():
        client = await connect(settings)
        try:
            rid = await start_erasure(client, settings, email=email, phone=phone, contact_id=contact_id)
        except ErasureRequestError as exc:
            raise typer.BadParameter(str(exc)) from None
        console.print(rid)
        if wait:
            result = await client.get_workflow_handle_for(GdprErasureWorkflow.run, workflow_id(rid)).result()
            _print_json(result.model_dump(mode="json"))
            if result.status != "completed":
                raise typer.Exit(1)

    asyncio.run(run())


@gdpr.command("status")
def gdpr_status(request_id: str) -> None:
    """An erasure's status, progress and (once done) its certificate."""
    import asyncio

    from callbridge.ops.privacy_requests import erasure_status
    from callbridge.core.temporal import connect

    settings = get_settings()

    async def run():
        status = await erasure_status(await connect(settings), settings, request_id)
        if status is None:
            console.print("no such erasure request")
            raise typer.Exit(1)
        _print_json(status)

    asyncio.run(run())


@consent.command("record")
def consent_record(
    contact_id: str = typer.Option(..., "--contact-id"),
    consent_type: str = typer.Option(..., "--type", help="Call Recording, Marketing or Data Processing."),
    channel: str = typer.Option(..., help="Phone, Email, SMS or Web."),
    version: str = typer.Option(..., help="The consent text's version."),
) -> None:
    """Record a consent on Contact_Consent__c; prints its id."""
    from activities.privacy import record_consent
    from callbridge.clients.salesforce.connection import SalesforceConnection

    settings = get_settings()
    console.print(record_consent(SalesforceConnection(settings), settings, contact_id, consent_type, channel, version))


@consent.command("withdraw")
def consent_withdraw(
    contact_id: str = typer.Option(..., "--contact-id"),
    consent_type: str = typer.Option(None, "--type", help="Only this type (default: all)."),
) -> None:
    """Mark the contact's consents withdrawn."""
    from activities.privacy import withdraw_consent
    from callbridge.clients.salesforce.connection import SalesforceConnection

    settings = get_settings()
    console.print(f"{withdraw_consent(SalesforceConnection(settings), settings, contact_id, consent_type)} withdrawn")


@export.command("contacts")
def export_contacts(
    out: str = typer.Option(..., help="CSV file to write."),
    masked: bool = typer.Option(False, "--masked", help="Mask PII (required: unmasked exports aren't offered)."),
) -> None:
    """Every contact as CSV, names/email masked, phones to their last 4 digits, a keyed email hash."""
    import csv

    from callbridge.clients.salesforce.query import query_pages
    from callbridge.clients.salesforce.connection import SalesforceConnection
    from callbridge.domain.privacy import EXPORT_COLUMNS, masked_contact
    from callbridge.store import privacy as privacy_store
    from callbridge.store.db import get_engine

    if not masked:
        raise typer.BadParameter("only --masked exports are offered", param_hint="--masked")
    settings = get_settings()
    key = settings.privacy_hash_key.get_secret_value()
    soql = ("SELECT Id, AccountId, FirstName, LastName, Email, Phone, MobilePhone, HomePhone, OtherPhone, "
            "MailingCountry, CreatedDate FROM Contact ORDER BY Id")
    rows = 0
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        for page in query_pages(SalesforceConnection(settings), soql):
            writer.writerows(masked_contact(r, key) for r in page)
            rows += len(page)
    privacy_store.audit(get_engine(settings.database_url), "export", "masked_contacts", ["masked_contact"])
    console.print(f"{rows} contacts written to {out}")


@breach.command("scope")
def breach_scope(
    since: str = typer.Option(..., help="ISO date or datetime the compromise began."),
    component: str = typer.Option(None, help="The compromised component (audit log component)."),
) -> None:
    """How many people and which data types a component handled since a date (72-hour notification).

    Components: call_logging, sync, consent, erasure, export, retention."""
    from datetime import datetime, timezone

    from callbridge.store.privacy_audit import breach_scope as scope
    from callbridge.store.db import get_engine

    settings = get_settings()
    start = datetime.fromisoformat(since)
    start = start if start.tzinfo else start.replace(tzinfo=timezone.utc)
    found = scope(get_engine(settings.database_url), settings.privacy_hash_key.get_secret_value(), start, component)
    _print_json({"since": start.isoformat(), "component": component, **found})


@retention.command("hold")
def retention_hold(conversation_id: str, reason: str = typer.Option("", help="Why (a case number)."),
                   release: bool = typer.Option(False, help="Lift the hold.")) -> None:
    """Put a conversation's recordings on legal hold (or release it)."""
    from callbridge.store import privacy as privacy_store
    from callbridge.store.db import get_engine

    privacy_store.set_legal_hold(get_engine(get_settings().database_url), conversation_id, reason, active=not release)
    console.print("released" if release else "on hold")
