"""Activities are built with their connections; `build_activities` is the worker's list."""

from __future__ import annotations

from typing import Callable

from callbridge.core.settings import Settings


def build_activities(settings: Settings) -> list[Callable]:
    from activities.call_logging_preparation import CallPreparationActivities
    from activities.caller_index import CallerIndexActivities
    from activities.call_logging_genesys import CallLoggingGenesysActivities
    from callbridge.clients.genesys.connection import GenesysConnection
    from activities.call_reconciliation import CallReconciliationActivities
    from activities.recording_link import RecordingLinkActivities
    from activities.call_logging import CallLoggingActivities
    from callbridge.clients.salesforce.connection import SalesforceConnection
    from activities.sync_pair import SyncPairActivities
    from activities.contact_sync_bulk import ContactSyncBulkActivities
    from activities.contact_sync import ContactSyncActivities

    connection = SalesforceConnection(settings)
    salesforce = CallLoggingActivities(connection)
    caller_index = CallerIndexActivities(connection, settings)
    genesys_connection = GenesysConnection(settings)
    genesys = CallLoggingGenesysActivities(genesys_connection)
    reconciliation = CallReconciliationActivities(genesys_connection, settings)
    recording_links = RecordingLinkActivities(connection, genesys_connection)
    preparation = CallPreparationActivities(genesys, caller_index, recording_links)
    sync = SyncPairActivities(connection, genesys_connection, settings)
    sync_run = ContactSyncActivities(connection, genesys_connection, settings)
    sync_bulk = ContactSyncBulkActivities(connection, genesys_connection, settings)
    return [
        salesforce.find_contact_by_id,
        salesforce.find_contacts_by_phone,
        salesforce.find_unknown_callers_account,
        salesforce.log_call,
        genesys.get_recording_link,
        preparation.prepare_call,
        recording_links.recording_state,
        recording_links.set_recording_line,
        reconciliation.reconcile_calls,
        caller_index.refresh_caller_index,
        sync.load_sync_pair,
        sync.write_salesforce_contact,
        sync.write_genesys_contact,
        sync.store_sync_base,
        sync.record_sync_review,
        sync_run.collect_sync_changes,
        sync_run.load_run_pairs,
        sync_run.start_sync_run,
        sync_run.finish_sync_run,
        sync_run.check_salesforce_allowance,
        sync_run.pair_waits_for_decision,
        sync_bulk.sync_contact_page,
        *privacy_activities(settings, connection, genesys_connection),
    ]


def privacy_activities(settings: Settings, connection=None, genesys=None) -> list[Callable]:
    """Erasure, consent and retention activities (docs/privacy.md). The worker passes its own
    connections: one Genesys token, so one request budget, per worker."""
    from activities.gdpr_erasure import GdprErasureActivities
    from callbridge.clients.genesys.connection import GenesysConnection
    from activities.privacy import PrivacyActivities
    from callbridge.clients.salesforce.connection import SalesforceConnection

    connection = connection or SalesforceConnection(settings)
    genesys = genesys or GenesysConnection(settings)
    erasure = GdprErasureActivities(connection, genesys, settings)
    privacy = PrivacyActivities(connection, genesys, settings)
    return [
        erasure.erasure_discover_salesforce, erasure.erasure_delete_salesforce, erasure.erasure_verify_salesforce,
        erasure.erasure_discover_genesys, erasure.erasure_delete_genesys_contacts, erasure.erasure_delete_recordings,
        erasure.erasure_verify_genesys, erasure.erasure_write_tombstone, erasure.erasure_delete_local,
        erasure.erasure_verify_local, erasure.erasure_discover_workflows, erasure.erasure_delete_workflows,
        erasure.erasure_verify_workflows, erasure.privacy_alert, erasure.erasure_record_certificate,
        erasure.erasure_record_failure,
        privacy.is_caller_erased, privacy.retention_conversations, privacy.retention_apply,
        privacy.retention_save_report,
    ]
