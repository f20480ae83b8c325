"""The contact-sync mapping config: the default loads; mistakes are named with their line."""

from __future__ import annotations

import pytest

from callbridge.domain.sync.config import ConfigError, check_against_salesforce, load, parse


def test_the_default_mapping_is_the_seeds():
    config = load()
    assert config.mode == "one_way" and config.interval_minutes == 30
    assert [(f.salesforce, f.genesys, f.direction, f.policy) for f in config.fields][:3] == [
        ("FirstName", "firstName", "both", "salesforce"),
        ("LastName", "lastName", "both", "salesforce"),
        ("Email", "workEmail", "both", "last_write"),
    ]
    assert [r.name for r in config.rules][0] == "FirstName"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("mode: sideways\nfields:\n  - {salesforce: FirstName, genesys: firstName}\n", "line 1: mode:"),
        ("mode: one_way\nfields:\n  - salesforce: FirstName\n    genesys: nickName\n",
         "line 4: fields.0.genesys: Value error, 'nickName' is not a writable ExternalContact field"),
        ("fields:\n  - {salesforce: FirstName, genesys: firstName}\n  - {salesforce: FirstName, genesys: lastName}\n",
         "salesforce field mapped twice: FirstName"),
        ("fields:\n  - {salesforce: FirstName, genesys: firstName, policy: coin_toss}\n", "line 2: fields.0.policy"),
        ("interval_minutes: 0\nfields:\n  - {salesforce: A, genesys: title}\n", "line 1: interval_minutes"),
        ("fields: [\n", "not valid YAML"),
        ("- just a list\n", "line 1: expected a mapping"),
        ("colour: blue\nfields:\n  - {salesforce: A, genesys: title}\n", "line 1: colour: Extra inputs"),
    ],
)
def test_mistakes_name_the_line(text, expected):
    with pytest.raises(ConfigError) as err:
        parse(text, "sync.yaml")
    assert expected in str(err.value)


def test_checked_against_the_orgs_describe():
    describe = {"fields": [{"name": "FirstName", "updateable": True}, {"name": "LastName", "updateable": True},
                           {"name": "Email", "updateable": True}, {"name": "Phone", "updateable": True},
                           {"name": "MobilePhone", "updateable": False}]}
    assert check_against_salesforce(load(), describe) == [
        "Contact.MobilePhone is not updateable but is mapped both",
        "Contact.Title does not exist in this org",
    ]


def test_the_genesys_fields_are_the_official_external_contact_models():
    """The Genesys side of the check: every mappable field exists in the official SDK's
    ExternalContact model (JSON names), with the kind its swagger type says."""
    from PureCloudPlatformClientV2.models import ExternalContact

    from callbridge.domain.sync.config import GENESYS_CONTACT_FIELDS

    model = ExternalContact()
    json_names = {v: k for k, v in model.attribute_map.items()}
    for name, kind in GENESYS_CONTACT_FIELDS.items():
        assert name in json_names, name
        swagger = model.swagger_types[json_names[name]]
        assert swagger == {"phone": "PhoneNumber", "boolean": "bool"}.get(kind, "str"), (name, swagger)


@pytest.mark.integration
async def test_a_mapping_that_does_not_fit_the_org_stops_the_run_with_the_reason(stack, temporal_client):
    from temporalio.client import WorkflowFailureError

    from callbridge.domain.sync.models import ContactSyncInput, Rule
    from workflows.contact_sync import ContactSyncWorkflow

    inp = ContactSyncInput.from_config(load(), mode="one_way", dry_run=True)
    inp.rules = [*inp.rules, Rule(name="Shoe_Size__c")]
    with pytest.raises(WorkflowFailureError) as err:
        await temporal_client.execute_workflow(ContactSyncWorkflow.run, inp, id="contact-sync-mapping-check",
                                               task_queue=stack.task_queue)
    assert "Contact.Shoe_Size__c does not exist in this org" in str(err.value.cause.cause)
