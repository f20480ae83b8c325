"""Activities are built with their connections; `build_activities` is the worker's list."""

from __future__ import annotations

from typing import Callable

from callbridge.settings import Settings


def build_activities(settings: Settings) -> list[Callable]:
    from activities.caller_index import CallerIndexActivities
    from activities.genesys import GenesysActivities
    from activities.genesys_connection import GenesysConnection
    from activities.salesforce import SalesforceActivities
    from activities.salesforce_connection import SalesforceConnection

    connection = SalesforceConnection(settings)
    salesforce = SalesforceActivities(connection)
    caller_index = CallerIndexActivities(connection, settings)
    genesys = GenesysActivities(GenesysConnection(settings))
    return [
        salesforce.find_contact_by_id,
        salesforce.find_contacts_by_phone,
        salesforce.find_unknown_callers_account,
        salesforce.log_call,
        genesys.get_recording_link,
        caller_index.refresh_caller_index,
    ]
