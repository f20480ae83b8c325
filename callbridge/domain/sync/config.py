"""The contact-sync mapping config: YAML validated with pydantic, errors naming the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from callbridge.domain.sync.merge import FieldRule

DEFAULT_PATH = Path(__file__).with_name("default_mapping.yaml")

# Writable fields of the Genesys ExternalContact model (PureCloudPlatformClientV2) that hold a
# person's data; server-set ones (id, createDate, modifyDate, selfUri…) can't be mapped.
GENESYS_CONTACT_FIELDS = {
    "firstName": "string", "middleName": "string", "lastName": "string", "salutation": "string",
    "title": "string", "workPhone": "phone", "cellPhone": "phone", "homePhone": "phone",
    "otherPhone": "phone", "workEmail": "email", "personalEmail": "email", "otherEmail": "email",
    "externalSystemUrl": "string", "surveyOptOut": "boolean",
}
MATCH_KEYS = ("link", "email", "phone", "name_account")


class FieldMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    salesforce: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    genesys: str
    direction: Literal["sf_to_gc", "gc_to_sf", "both"] = "both"
    policy: Literal["salesforce", "genesys", "last_write", "manual"] = "salesforce"

    @field_validator("genesys")
    @classmethod
    def _known_genesys_field(cls, value: str) -> str:
        if value not in GENESYS_CONTACT_FIELDS:
            raise ValueError(f"{value!r} is not a writable ExternalContact field "
                             f"(one of: {', '.join(sorted(GENESYS_CONTACT_FIELDS))})")
        return value

    @property
    def rule(self) -> FieldRule:
        return FieldRule(self.salesforce, self.direction, self.policy)


class SyncConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["one_way", "bidirectional"] = "one_way"
    interval_minutes: int = Field(30, ge=1, le=24 * 60)
    delete_handling: Literal["propagate", "unlink"] = "propagate"
    matching: list[Literal["link", "email", "phone", "name_account"]] = list(MATCH_KEYS)
    bulk_threshold: int = Field(2000, ge=1)
    manual_deadline_days: int = Field(7, ge=1, le=90)
    salesforce_allowance_share: float = Field(0.8, gt=0, le=1)  # stop the run at this share of the daily allowance
    alert_errors: int = Field(10, ge=0)            # the seed's alerts, per run
    alert_duration_minutes: float = Field(5, gt=0)
    alert_conflicts: int = Field(10, ge=0)
    fields: list[FieldMapping] = Field(min_length=1)

    @model_validator(mode="after")
    def _no_field_twice(self) -> "SyncConfig":
        for side in ("salesforce", "genesys"):
            names = [getattr(f, side) for f in self.fields]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"{side} field mapped twice: {', '.join(twice)}")
        if self.matching and self.matching[0] != "link":
            raise ValueError("matching must start with link (an existing link always wins)")
        return self

    @property
    def rules(self) -> list[FieldRule]:
        return [f.rule for f in self.fields]


class ConfigError(ValueError):
    """Every problem in a mapping file, each with the line it is on."""

    def __init__(self, path: str, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.problems = problems


def _lines(node: yaml.Node, path: tuple = ()) -> dict[tuple, int]:
    """Line (1-based) of every key and item in a YAML document, by its path."""
    out = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out.update(_lines(value, (*path, key.value)))
            out[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out.update(_lines(item, (*path, i)))
    return out


def parse(text: str, path: str = "<mapping>") -> SyncConfig:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise ConfigError(path, [f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    if not isinstance(data, dict):
        raise ConfigError(path, ["line 1: expected a mapping of settings"])
    lines = _lines(node)
    try:
        return SyncConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False, include_input=False):
            loc = tuple(err["loc"])
            # The closest enclosing node that exists in the file names the line.
            line = next((lines[loc[:i]] for i in range(len(loc), -1, -1) if loc[:i] in lines), 1)
            field = ".".join(str(p) for p in loc) or "(top)"
            problems.append(f"line {line}: {field}: {err['msg']}")
        raise ConfigError(path, problems) from None


def load(path: Path | None = None) -> SyncConfig:
    path = path or DEFAULT_PATH
    return parse(path.read_text(encoding="utf-8"), str(path))


def check_against_salesforce(config: SyncConfig | list[tuple[str, str]], describe: dict[str, Any]) -> list[str]:
    """Problems with the Contact describe of the org: unknown or read-only mapped fields.
    `config`: a mapping, or its (Salesforce field, direction) pairs."""
    pairs = [(m.salesforce, m.direction) for m in config.fields] if isinstance(config, SyncConfig) else config
    fields = {f["name"]: f for f in describe.get("fields", [])}
    problems = []
    for name, direction in pairs:
        meta = fields.get(name)
        if meta is None:
            problems.append(f"Contact.{name} does not exist in this org")
        elif direction in ("gc_to_sf", "both") and not meta.get("updateable"):
            problems.append(f"Contact.{name} is not updateable but is mapped {direction}")
    return problems
