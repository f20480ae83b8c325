"""The org's metadata: sObjects and their fields, as describe calls report them.

Only what Callbridge and its demo need is modelled, but what is modelled follows the real
field types, lengths and permissions (createable/updateable/nillable/externalId...).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import ids

# Field types (describe's "type" values).
TEXT_TYPES = {"string", "textarea", "phone", "email", "picklist", "combobox", "url"}
ID_TYPES = {"id", "reference"}
STRINGISH = TEXT_TYPES | ID_TYPES


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    label: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    external_id: bool = False
    unique: bool = False
    id_lookup: bool = False
    custom: bool = False
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    default: object = None  # applied on create when the field is absent
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    calculated: bool = False
    auto_number: bool = False
    indexed: bool = False

    @property
    def required(self) -> bool:
        """Salesforce's notion: createable, not nillable, no default on create."""
        return self.createable and not self.nillable and self.default is None and self.type != "boolean"

    @property
    def sql_type(self) -> str:
        if self.type in TEXT_TYPES:
            return "TEXT COLLATE NOCASE"  # SOQL compares text case-insensitively
        if self.type in ("int",):
            return "INTEGER"
        if self.type in ("double", "currency", "percent"):
            return "REAL"
        if self.type == "boolean":
            return "INTEGER NOT NULL DEFAULT 0"
        return "TEXT"  # id, reference, date, datetime (ISO strings sort correctly)

    def describe(self) -> dict:
        soap = {
            "string": "xsd:string", "textarea": "xsd:string", "phone": "xsd:string",
            "email": "xsd:string", "picklist": "xsd:string", "combobox": "xsd:string",
            "url": "xsd:string", "id": "tns:ID", "reference": "tns:ID", "date": "xsd:date",
            "datetime": "xsd:dateTime", "double": "xsd:double", "int": "xsd:int",
            "boolean": "xsd:boolean",
        }[self.type]
        return {
            "aggregatable": self.type not in ("textarea",),
            "autoNumber": self.auto_number,
            "byteLength": self.length * 3,
            "calculated": self.calculated,
            "caseSensitive": False,
            "createable": self.createable,
            "custom": self.custom,
            "defaultValue": self.default if self.type != "boolean" else bool(self.default),
            "defaultedOnCreate": self.default is not None or self.type == "boolean" or not self.createable,
            "digits": 0,
            "externalId": self.external_id,
            "filterable": self.type != "textarea" or self.length <= 255,
            "groupable": self.type not in ("textarea", "double", "datetime"),
            "idLookup": self.id_lookup,
            "label": self.label,
            "length": self.length,
            "name": self.name,
            "nameField": self.name == "Name",
            "nillable": self.nillable,
            "picklistValues": [
                {"active": True, "defaultValue": v == self.default, "label": v, "validFor": None, "value": v}
                for v in self.picklist
            ],
            "polymorphicForeignKey": len(self.reference_to) > 1,
            "precision": self.precision,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "restrictedPicklist": self.restricted,
            "scale": self.scale,
            "soapType": soap,
            "sortable": self.type != "textarea" or self.length <= 255,
            "type": self.type,
            "unique": self.unique,
            "updateable": self.updateable,
        }


@dataclass
class SObject:
    name: str
    label: str
    label_plural: str
    fields: list[Field]
    custom: bool = False
    by_lower: dict[str, Field] = field(init=False)
    by_relationship: dict[str, Field] = field(init=False)

    def __post_init__(self) -> None:
        self.by_lower = {f.name.lower(): f for f in self.fields}
        self.by_relationship = {f.relationship_name.lower(): f for f in self.fields if f.relationship_name}

    @property
    def key_prefix(self) -> str:
        return ids.KEY_PREFIXES[self.name]

    def field(self, name: str) -> Field | None:
        return self.by_lower.get(name.lower())

    def urls(self, version: str) -> dict:
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {"rowTemplate": base + "/{ID}", "defaultValues": base + "/defaultValues?recordTypeId&fields",
                "describe": base + "/describe", "sobject": base}

    def summary(self, version: str) -> dict:
        """One entry of the global describe."""
        return {
            "activateable": False, "associateEntityType": None, "associateParentEntity": None,
            "createable": True, "custom": self.custom, "customSetting": False,
            "deepCloneable": False, "deletable": True, "deprecatedAndHidden": False,
            "feedEnabled": False, "hasSubtypes": False, "isInterface": False, "isSubtype": False,
            "keyPrefix": self.key_prefix, "label": self.label, "labelPlural": self.label_plural,
            "layoutable": True, "mergeable": self.name in ("Account", "Contact"), "mruEnabled": True,
            "name": self.name, "queryable": True, "replicateable": True, "retrieveable": True,
            "searchable": True, "triggerable": True, "undeletable": True, "updateable": True,
            "urls": self.urls(version),
        }

    def describe(self, version: str, child_relationships: list[dict]) -> dict:
        return {
            **self.summary(version),
            "childRelationships": child_relationships,
            "fields": [f.describe() for f in self.fields],
            "recordTypeInfos": [],
            "supportedScopes": [{"label": "All " + self.label_plural.lower(), "name": "everything"}],
        }


def _system_fields(has_name: Field | None) -> list[Field]:
    out = [
        Field("Id", "id", f"Record ID", length=18, nillable=False, createable=False, updateable=False,
              id_lookup=True, indexed=True),
        Field("IsDeleted", "boolean", "Deleted", createable=False, updateable=False, nillable=False),
    ]
    if has_name:
        out.append(has_name)
    out += [
        Field("CreatedDate", "datetime", "Created Date", nillable=False, createable=False, updateable=False),
        Field("LastModifiedDate", "datetime", "Last Modified Date", nillable=False, createable=False,
              updateable=False),
        Field("SystemModstamp", "datetime", "System Modstamp", nillable=False, createable=False,
              updateable=False, indexed=True),
    ]
    return out


def _picklist(name: str, label: str, values: tuple[str, ...], **kw) -> Field:
    return Field(name, "picklist", label, length=255, picklist=values, **kw)


ACCOUNT = SObject("Account", "Account", "Accounts", _system_fields(
    Field("Name", "string", "Account Name", length=255, nillable=False, id_lookup=False, indexed=True)
) + [
    Field("AccountNumber", "string", "Account Number", length=40),
    Field("Phone", "phone", "Account Phone", length=40),
    Field("BillingCity", "string", "Billing City", length=40),
    Field("BillingCountry", "string", "Billing Country", length=80),
    _picklist("Industry", "Industry", ("Agriculture", "Banking", "Communications", "Consulting", "Education",
                                        "Electronics", "Energy", "Finance", "Healthcare", "Manufacturing",
                                        "Retail", "Technology", "Telecommunications", "Transportation")),
    _picklist("Type", "Account Type", ("Prospect", "Customer - Direct", "Customer - Channel",
                                       "Channel Partner / Reseller", "Installation Partner",
                                       "Technology Partner", "Other")),
    Field("LastActivityDate", "date", "Last Activity", createable=False, updateable=False),
])

CONTACT = SObject("Contact", "Contact", "Contacts", _system_fields(
    Field("Name", "string", "Full Name", length=121, nillable=False, createable=False, updateable=False,
          id_lookup=True, indexed=True, calculated=False)
) + [
    Field("FirstName", "string", "First Name", length=40),
    Field("LastName", "string", "Last Name", length=80, nillable=False),
    Field("AccountId", "reference", "Account ID", length=18, reference_to=("Account",),
          relationship_name="Account", indexed=True),
    Field("Email", "email", "Email", length=80, id_lookup=True, indexed=True),
    Field("Phone", "phone", "Business Phone", length=40),
    Field("MobilePhone", "phone", "Mobile Phone", length=40),
    Field("HomePhone", "phone", "Home Phone", length=40),
    Field("OtherPhone", "phone", "Other Phone", length=40),
    Field("MailingCity", "string", "Mailing City", length=40),
    Field("MailingCountry", "string", "Mailing Country", length=80),
    Field("Title", "string", "Title", length=128),
    Field("Description", "textarea", "Contact Description", length=32000),
    Field("LastActivityDate", "date", "Last Activity", createable=False, updateable=False),
    _picklist("Custom_Tier__c", "Tier", ("Standard", "Premium", "Enterprise"), restricted=True, custom=True),
    Field("Genesys_Contact_Id__c", "string", "Genesys Contact Id", length=64, external_id=True, unique=True,
          id_lookup=True, custom=True, indexed=True),
    Field("Last_Call_Date__c", "datetime", "Last Call Date", custom=True),
    Field("Last_Call_Duration__c", "double", "Last Call Duration", precision=18, scale=0, custom=True),
])

TASK = SObject("Task", "Task", "Tasks", _system_fields(None) + [
    Field("Subject", "combobox", "Subject", length=255),
    Field("WhoId", "reference", "Name ID", length=18, reference_to=("Contact",), relationship_name="Who",
          indexed=True),
    Field("WhatId", "reference", "Related To ID", length=18, reference_to=("Account", "Case"),
          relationship_name="What", indexed=True),
    Field("ActivityDate", "date", "Due Date Only"),
    _picklist("Status", "Status", ("Not Started", "In Progress", "Completed", "Waiting on someone else",
                                   "Deferred"), nillable=False, default="Not Started"),
    _picklist("Priority", "Priority", ("High", "Normal", "Low"), nillable=False, default="Normal"),
    _picklist("Type", "Type", ("Call", "Email", "Meeting", "Other")),
    _picklist("TaskSubtype", "Task Subtype", ("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"),
              updateable=False, restricted=True),
    _picklist("CallType", "Call Type", ("Inbound", "Outbound", "Internal"), restricted=True),
    Field("CallDurationInSeconds", "int", "Call Duration", precision=8),
    Field("CallObject", "string", "Call Object Identifier", length=255),
    Field("CallDisposition", "string", "Call Result", length=255),
    Field("Description", "textarea", "Description", length=32000),
    Field("Genesys_Conversation_Id__c", "string", "Genesys Conversation Id", length=255, external_id=True,
          unique=True, id_lookup=True, custom=True, indexed=True),
    Field("IsClosed", "boolean", "Closed", createable=False, updateable=False, nillable=False),
    # Set by the archival background process (aging.archive_activities); read-only.
    Field("IsArchived", "boolean", "Archived", createable=False, updateable=False, nillable=False),
])

CASE = SObject("Case", "Case", "Cases", _system_fields(None) + [
    Field("CaseNumber", "string", "Case Number", length=30, nillable=False, createable=False,
          updateable=False, auto_number=True, id_lookup=True, indexed=True),
    Field("Subject", "string", "Subject", length=255),
    _picklist("Status", "Status", ("New", "Working", "Escalated", "Closed"), nillable=False, default="New"),
    _picklist("Priority", "Priority", ("High", "Medium", "Low"), nillable=False, default="Medium"),
    _picklist("Origin", "Case Origin", ("Phone", "Email", "Web")),
    Field("ContactId", "reference", "Contact ID", length=18, reference_to=("Contact",),
          relationship_name="Contact", indexed=True),
    Field("AccountId", "reference", "Account ID", length=18, reference_to=("Account",),
          relationship_name="Account", indexed=True),
    Field("Description", "textarea", "Description", length=32000),
    Field("IsClosed", "boolean", "Closed", createable=False, updateable=False, nillable=False),
])

EVENT = SObject("Event", "Event", "Events", _system_fields(None) + [
    Field("Subject", "combobox", "Subject", length=255),
    Field("WhoId", "reference", "Name ID", length=18, reference_to=("Contact",), relationship_name="Who",
          indexed=True),
    Field("WhatId", "reference", "Related To ID", length=18, reference_to=("Account", "Case"),
          relationship_name="What", indexed=True),
    Field("StartDateTime", "datetime", "Start"),
    Field("EndDateTime", "datetime", "End"),
    Field("Description", "textarea", "Description", length=32000),
    # Custom activity fields (deploy/.../objects/Activity) exist on Task and Event alike.
    Field("Genesys_Conversation_Id__c", "string", "Genesys Conversation Id", length=255, external_id=True,
          unique=True, id_lookup=True, custom=True, indexed=True),
    Field("IsArchived", "boolean", "Archived", createable=False, updateable=False, nillable=False),
])

CONTACT_CONSENT = SObject("Contact_Consent__c", "Contact Consent", "Contact Consents", _system_fields(
    Field("Name", "string", "Contact Consent Name", length=80, nillable=False, createable=False,
          updateable=False, auto_number=True, id_lookup=True, indexed=True)
) + [
    Field("Contact__c", "reference", "Contact", length=18, reference_to=("Contact",),
          relationship_name="Contact__r", custom=True, indexed=True),
    # Restricted picklists, as deploy/salesforce's field metadata defines them.
    _picklist("Consent_Type__c", "Consent Type", ("Call Recording", "Marketing", "Data Processing"),
              custom=True, restricted=True),
    _picklist("Channel__c", "Channel", ("Phone", "Email", "SMS", "Web"), custom=True, restricted=True),
    Field("Version__c", "string", "Version", length=20, custom=True),
    Field("Consent_Date__c", "datetime", "Consent Date", custom=True),
    Field("Withdrawn__c", "boolean", "Withdrawn", custom=True, nillable=False, default=False),
    Field("Withdrawn_Date__c", "datetime", "Withdrawn Date", custom=True),
], custom=True)

SOBJECTS: dict[str, SObject] = {o.name: o for o in (ACCOUNT, CONTACT, TASK, EVENT, CASE, CONTACT_CONSENT)}
_BY_LOWER = {name.lower(): o for name, o in SOBJECTS.items()}
_BY_PREFIX = {o.key_prefix: o for o in SOBJECTS.values()}

# Child relationships used by subqueries and describe: (parent, relationship name) -> (child, field).
CHILD_RELATIONSHIPS: dict[tuple[str, str], tuple[str, str]] = {
    ("Account", "contacts"): ("Contact", "AccountId"),
    ("Account", "cases"): ("Case", "AccountId"),
    ("Contact", "cases"): ("Case", "ContactId"),
    ("Contact", "tasks"): ("Task", "WhoId"),
    ("Contact", "events"): ("Event", "WhoId"),
    ("Contact", "contact_consents__r"): ("Contact_Consent__c", "Contact__c"),
    ("Account", "tasks"): ("Task", "WhatId"),
    ("Case", "tasks"): ("Task", "WhatId"),
}
_CHILD_NAMES = {
    ("Account", "contacts"): "Contacts", ("Account", "cases"): "Cases", ("Contact", "cases"): "Cases",
    ("Contact", "tasks"): "Tasks", ("Contact", "events"): "Events",
    ("Contact", "contact_consents__r"): "Contact_Consents__r", ("Account", "tasks"): "Tasks",
    ("Case", "tasks"): "Tasks",
}


# A Contact's activities go with it when it is deleted, an Account's Contacts and activities
# with it (store.CASCADE_DELETE does it).
_CASCADE = {("Contact", "tasks"), ("Contact", "events"), ("Account", "contacts"), ("Account", "tasks")}


def child_relationship_name(parent: str, lower_name: str) -> str:
    return _CHILD_NAMES[(parent, lower_name)]


def child_relationships_of(parent: str) -> list[dict]:
    out = []
    for (p, lower), (child, fld) in CHILD_RELATIONSHIPS.items():
        if p == parent:
            out.append({"cascadeDelete": (p, lower) in _CASCADE, "childSObject": child, "deprecatedAndHidden": False,
                        "field": fld, "junctionIdListNames": [], "junctionReferenceTo": [],
                        "relationshipName": _CHILD_NAMES[(p, lower)], "restrictedDelete": False})
    return out


def sobject(name: str) -> SObject | None:
    return _BY_LOWER.get(name.lower())


def sobject_for_id(record_id: str) -> SObject | None:
    return _BY_PREFIX.get(record_id[:3])
