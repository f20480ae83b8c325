"""The contact-sync mapping config: the default loads; mistakes are named with their line."""

from __future__ import annotations

import pytest

from callbridge.sync.config import ConfigError, check_against_salesforce, load, parse


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
