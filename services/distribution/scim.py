"""SCIM 2.0 (RFC 7643 / 7644), pure: the schemas we serve, resources made canonical, PATCH,
the mapping of a SCIM user to the HR record the directory consumes, and the discovery documents.
No I/O: the use cases are in handlers/scim.py, the SQL (filters included) in repository.py."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from services.distribution import domain

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
MEDIA_TYPE = "application/scim+json"
MAX_RESULTS = 1000
ID_LENGTH = 200  # an identifier's longest: the HR id of hr.employees.v1


class ScimError(Exception):
    """An RFC 7644 section 3.12 error: ``status``, optional ``scimType``, ``detail``."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [ERROR], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body


@dataclass(frozen=True)
class Attr:
    name: str
    type: str = "string"
    multi: bool = False
    subs: tuple[Attr, ...] = ()
    mutability: str = "readWrite"
    required: bool = False
    case_exact: bool = False
    uniqueness: str = "none"
    returned: str = "default"
    description: str = ""
    reference_types: tuple[str, ...] = ("external",)  # of a reference: the resource types it may point to
    canonical_values: tuple[str, ...] = ()
    max_length: int = 1000  # of a string: identifiers are indexed (a B-tree entry holds ~2.7 kB)

    def sub(self, name: str) -> Attr | None:
        return next((s for s in self.subs if s.name.lower() == name.lower()), None)


def _multi(name: str, *extra: Attr, description: str = "", required: bool = False) -> Attr:
    subs = (Attr("value", required=required), Attr("display"), Attr("type"), Attr("primary", "boolean"), *extra)
    return Attr(name, "complex", multi=True, subs=subs, description=description, required=required)


# ISO 3166-1 alpha-2: the directory's country (hr.employees.v1) is one of these.
_ISO_3166 = (
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT "
    "BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH "
    "ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT "
    "HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS "
    "LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI "
    "NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG "
    "SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG "
    "UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW")
COUNTRIES = tuple(_ISO_3166.split())
# Suggested BCP 47 tags (any well-formed tag is accepted): the languages of the group's employees.
LANGUAGES = ("en", "en-GB", "en-US", "fr", "fr-FR", "de", "de-DE", "es", "es-ES", "it", "nl", "pt", "pt-BR", "pl",
             "sv", "da", "fi", "nb", "cs", "ro", "hu", "el", "tr", "ja", "zh", "ko", "ar")


USER_ATTRIBUTES: tuple[Attr, ...] = (
    Attr("userName", required=True, uniqueness="server", max_length=ID_LENGTH,
         description="Unique login name; the HR e-mail when it is one"),
    Attr("name", "complex", subs=tuple(Attr(n) for n in (
        "formatted", "familyName", "givenName", "middleName", "honorificPrefix", "honorificSuffix"))),
    Attr("displayName"), Attr("nickName"), Attr("profileUrl", "reference"), Attr("title"), Attr("userType"),
    Attr("preferredLanguage", canonical_values=LANGUAGES, description="BCP 47: the directory's language"),
    Attr("locale", canonical_values=LANGUAGES, description="BCP 47: the language when preferredLanguage is absent"),
    Attr("timezone"),
    Attr("active", "boolean", description="false: the person has left (a departure)"),
    Attr("password", mutability="writeOnly", returned="never"),
    _multi("emails", required=True, description="Required: the work e-mail (the primary one) is where the "
           "employee is invited and notified; a userName that is an e-mail address stands in for it"),
    _multi("phoneNumbers"), _multi("ims"), _multi("photos"),
    Attr("addresses", "complex", multi=True, subs=tuple(Attr(n) for n in (
        "formatted", "streetAddress", "locality", "region", "postalCode", "type")) + (
        Attr("country", canonical_values=COUNTRIES, description="ISO 3166-1 alpha-2 (enforced: 400 otherwise)"),
        Attr("primary", "boolean"),)),
    Attr("groups", "complex", multi=True, mutability="readOnly",
         subs=(Attr("value", mutability="readOnly"),
               Attr("$ref", "reference", mutability="readOnly", reference_types=("User", "Group")),
               Attr("display", mutability="readOnly"), Attr("type", mutability="readOnly"))),
    _multi("entitlements"), _multi("roles"), _multi("x509Certificates"),
)
ENTERPRISE_ATTRIBUTES: tuple[Attr, ...] = (
    Attr("employeeNumber", max_length=ID_LENGTH, description="The HR employee id, when the IdP knows it"),
    Attr("costCenter"),
    Attr("organization", description="The subsidiary's org unit code"),
    Attr("division"), Attr("department"),
    Attr("manager", "complex", subs=(Attr("value", description="The manager's SCIM id or HR id"),
                                     Attr("$ref", "reference", reference_types=("User",)),
                                     Attr("displayName", mutability="readOnly"))),
)
GROUP_ATTRIBUTES: tuple[Attr, ...] = (
    Attr("displayName", required=True, uniqueness="server", max_length=ID_LENGTH,
         description="The group's name, used for targeting"),
    Attr("members", "complex", multi=True, subs=(
        Attr("value", mutability="immutable"),
        Attr("$ref", "reference", mutability="immutable", reference_types=("User", "Group")),
        Attr("type", mutability="immutable", canonical_values=("User", "Group"))),
        description="Users only: a Group as a member (nested groups) is refused with 400"),
)
COMMON = (Attr("externalId", case_exact=True, max_length=ID_LENGTH),)


@dataclass(frozen=True)
class ResourceSchema:
    name: str
    urn: str
    attributes: tuple[Attr, ...]
    extensions: dict[str, tuple[Attr, ...]] = field(default_factory=dict)

    def attribute(self, path: domain.AttrPath) -> Attr:
        """The attribute a path names, or ``invalidPath``/``invalidFilter`` for unknown ones."""
        schema = (path.schema or self.urn).lower()
        if schema == self.urn.lower():
            pool = self.attributes + COMMON
        else:
            pool = next((attrs for urn, attrs in self.extensions.items() if urn.lower() == schema), ())
        found = next((a for a in pool if a.name.lower() == path.attribute.lower()), None)
        if found is None or (path.sub and found.sub(path.sub) is None):
            raise domain.InvalidFilter(f"unknown attribute {_dotted(path)!r}")
        return found

    def extension_urn(self, path: domain.AttrPath) -> str | None:
        if path.schema is None or path.schema.lower() == self.urn.lower():
            return None
        return next(urn for urn in self.extensions if urn.lower() == path.schema.lower())


USERS = ResourceSchema("User", USER, USER_ATTRIBUTES, {ENTERPRISE: ENTERPRISE_ATTRIBUTES})
GROUPS = ResourceSchema("Group", GROUP, GROUP_ATTRIBUTES)


def _dotted(path: domain.AttrPath) -> str:
    return f"{path.attribute}.{path.sub}" if path.sub else path.attribute


# --- canonical resources ------------------------------------------------------------------------

def canonical(schema: ResourceSchema, body: Any) -> dict[str, Any]:
    """The attributes we keep of a client's resource, under their canonical names; read-only and
    unknown attributes are dropped (RFC 7643 section 7: the server ignores them)."""
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a JSON object", "invalidSyntax")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or schema.urn not in schemas:
        raise ScimError(400, f"'schemas' must list {schema.urn}", "invalidSyntax")
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key.lower() in ("schemas", "id", "meta"):
            continue
        urn = next((u for u in schema.extensions if u.lower() == key.lower()), None)
        if urn is not None:
            if not isinstance(value, dict):
                raise ScimError(400, f"{urn} must be an object", "invalidSyntax")
            out[urn] = _attributes(schema.extensions[urn], value)
        else:
            out.update(_attributes(schema.attributes + COMMON, {key: value}))
    return out


def _attributes(pool: tuple[Attr, ...], values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        attr = next((a for a in pool if a.name.lower() == key.lower()), None)
        if attr is None or attr.mutability == "readOnly" or value is None:
            continue
        out[attr.name] = _value(attr, value)
    return out


def _value(attr: Attr, value: Any) -> Any:
    if attr.multi:
        items = value if isinstance(value, list) else [value]
        return [_single(attr, item) for item in items]
    return _single(attr, value)


def _single(attr: Attr, value: Any) -> Any:
    if attr.type == "complex":
        if not isinstance(value, dict):
            raise ScimError(400, f"{attr.name} must be an object", "invalidValue")
        return _attributes(attr.subs, value)
    if attr.type == "boolean":
        # Some IdPs (Entra ID) send booleans as the strings "True" and "False".
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ScimError(400, f"{attr.name} must be a boolean", "invalidValue")
        return value
    if not isinstance(value, str):
        raise ScimError(400, f"{attr.name} must be a string", "invalidValue")
    if len(value) > attr.max_length:
        raise ScimError(400, f"{attr.name} is longer than {attr.max_length} characters", "invalidValue")
    return value


def require_user_name(resource: dict[str, Any]) -> str:
    user_name = resource.get("userName")
    if not isinstance(user_name, str) or not user_name.strip():
        raise ScimError(400, "userName is required", "invalidValue")
    return user_name


def require_display_name(resource: dict[str, Any]) -> str:
    name = resource.get("displayName")
    if not isinstance(name, str) or not name.strip():
        raise ScimError(400, "displayName is required", "invalidValue")
    return name


def project(resource: dict[str, Any], attributes: list[str], excluded: list[str]) -> dict[str, Any]:
    """``attributes`` / ``excludedAttributes`` (top-level names; id and schemas always returned)."""
    always = {"id", "schemas"}
    if attributes:
        wanted = {a.split(".")[0].rsplit(":", 1)[-1].lower() for a in attributes} | always
        return {k: v for k, v in resource.items()
                if k.lower() in wanted or k.rsplit(":", 1)[-1].lower() in wanted or k.lower() in
                {a.lower() for a in attributes}}
    if excluded:
        unwanted = {a.lower() for a in excluded} - always
        return {k: v for k, v in resource.items() if k.lower() not in unwanted}
    return resource


# --- users as HR records ------------------------------------------------------------------------

def employee_id_for(resource: dict[str, Any]) -> str:
    """The HR id a new SCIM user is known by (fixed at creation): the enterprise employeeNumber,
    else externalId, else userName — what the employee's login token carries as ``sub``."""
    enterprise = resource.get(ENTERPRISE) or {}
    for candidate in (enterprise.get("employeeNumber"), resource.get("externalId"), resource.get("userName")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    raise ScimError(400, "userName is required", "invalidValue")


def is_active(resource: dict[str, Any]) -> bool:
    return resource.get("active", True) is not False


def employee_record(resource: dict[str, Any], employee_id: str, manager_id: str | None) -> dict[str, Any]:
    """The ``hr.employee.upserted`` data for a SCIM user (less version and effective_at).
    Fields SCIM leaves optional get neutral values: country "ZZ" (unknown region) and language
    "und" (undetermined), so that they never target anyone by mistake."""
    enterprise = resource.get(ENTERPRISE) or {}
    email = _primary(resource.get("emails"))
    user_name = resource.get("userName", "")
    if not email and "@" in user_name:
        email = user_name
    if not email:
        raise ScimError(400, "a work e-mail is required (emails, or a userName that is one)", "invalidValue")
    name = resource.get("name") or {}
    given, family = name.get("givenName"), name.get("familyName")
    if not given or not family:
        words = (resource.get("displayName") or user_name.split("@")[0]).split()
        given = given or words[0]
        family = family or (words[-1] if len(words) > 1 else words[0])
    address = _primary_item(resource.get("addresses"))
    country = (address.get("country") or "ZZ").upper()
    language = (resource.get("preferredLanguage") or resource.get("locale") or "und").split(",")[0].split(";")[0]
    return {
        "employee_id": employee_id, "email": email, "given_name": given, "family_name": family,
        "subsidiary": enterprise.get("organization") or "unassigned",
        "department": enterprise.get("department") or "", "site": address.get("locality") or "",
        "country": country, "language": language.replace("_", "-").strip(), "manager_id": manager_id,
    }


def manager_reference(resource: dict[str, Any]) -> str | None:
    manager = (resource.get(ENTERPRISE) or {}).get("manager") or {}
    value = manager.get("value")
    return value if isinstance(value, str) and value else None


def _primary_item(values: Any) -> dict[str, Any]:
    items = [v for v in values or [] if isinstance(v, dict)]
    return next((v for v in items if v.get("primary") is True), items[0] if items else {})


def _primary(values: Any) -> str | None:
    value = _primary_item(values).get("value")
    return value if isinstance(value, str) and value else None


# --- PATCH (RFC 7644 section 3.5.2) -------------------------------------------------------------

def apply_patch(schema: ResourceSchema, resource: dict[str, Any], body: Any) -> dict[str, Any]:
    """The resource after the PatchOp's operations, all or nothing (a copy; raises ScimError)."""
    if not isinstance(body, dict) or PATCH_OP not in (body.get("schemas") or []):
        raise ScimError(400, f"a PATCH body lists {PATCH_OP} in 'schemas'", "invalidSyntax")
    operations = body.get("Operations") or body.get("operations")
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, "Operations must be a non-empty list", "invalidSyntax")
    result = copy.deepcopy(resource)
    for operation in operations:
        if not isinstance(operation, dict):
            raise ScimError(400, "each operation is an object", "invalidSyntax")
        op = str(operation.get("op", "")).lower()
        if op not in ("add", "replace", "remove"):
            raise ScimError(400, f"unknown op {operation.get('op')!r}", "invalidSyntax")
        path, value = operation.get("path"), operation.get("value")
        whole = _extension(schema, str(path)) if path else None
        try:
            if whole:
                _apply_extension(schema, result, op, whole, value)
            elif path:
                _apply_at(schema, result, op, domain.parse_patch_path(str(path)), value)
            elif op == "remove":
                raise ScimError(400, "remove needs a path", "noTarget")
            elif not isinstance(value, dict):
                raise ScimError(400, f"{op} without a path needs an object value", "invalidValue")
            else:
                for key, item in value.items():
                    if key.lower() in ("schemas", "id", "meta"):
                        continue
                    urn = _extension(schema, key)
                    if urn and isinstance(item, dict):
                        _apply_extension(schema, result, op, urn, item)
                    else:
                        _apply_at(schema, result, op, domain.parse_patch_path(key), item)
        except domain.InvalidFilter as error:
            raise ScimError(400, str(error), "invalidPath") from None
    return result


def _extension(schema: ResourceSchema, name: str) -> str | None:
    """The extension a name designates as a whole (a PATCH path may be the bare URN)."""
    return next((urn for urn in schema.extensions if urn.lower() == name.strip().lower()), None)


def _apply_extension(schema: ResourceSchema, resource: dict[str, Any], op: str, urn: str, value: Any) -> None:
    """An operation on the whole extension: remove drops it; add and replace set the
    sub-attributes given and leave the others (RFC 7644 section 3.5.2.1 and 3.5.2.3)."""
    if op == "remove":
        resource.pop(urn, None)
        return
    if not isinstance(value, dict):
        raise ScimError(400, f"{op} of {urn} needs an object value", "invalidValue")
    for key, item in value.items():
        if key.lower() != "schemas":
            _apply_at(schema, resource, op, domain.parse_patch_path(f"{urn}:{key}"), item)


def _apply_at(schema: ResourceSchema, resource: dict[str, Any], op: str, target: domain.PatchPath,
              value: Any) -> None:
    path = target.path
    attr = schema.attribute(path)
    if attr.mutability == "readOnly":
        raise ScimError(400, f"{attr.name} is read-only", "mutability")
    urn = schema.extension_urn(path)
    container = resource.setdefault(urn, {}) if urn else resource
    if target.selector is not None:
        _apply_selected(attr, container, op, target, value)
    elif path.sub:
        sub = attr.sub(path.sub)
        assert sub is not None
        if attr.multi:
            raise ScimError(400, f"select elements of {attr.name} with a filter", "invalidPath")
        parent = container.setdefault(attr.name, {})
        if op == "remove":
            parent.pop(sub.name, None)
        else:
            parent[sub.name] = _single(sub, value)
    elif op == "remove":
        container.pop(attr.name, None)
    elif attr.multi and op == "add":
        container[attr.name] = list(container.get(attr.name) or []) + _value(attr, value)
    elif attr.type == "complex" and not attr.multi and op == "add":
        container[attr.name] = {**(container.get(attr.name) or {}), **_single(attr, value)}
    else:
        container[attr.name] = _value(attr, value)
    if urn and not container:
        resource.pop(urn, None)


def _apply_selected(attr: Attr, container: dict[str, Any], op: str, target: domain.PatchPath, value: Any) -> None:
    if not attr.multi:
        raise ScimError(400, f"{attr.name} is not multi-valued: no filter", "invalidPath")
    assert target.selector is not None
    items = list(container.get(attr.name) or [])
    chosen = [i for i, item in enumerate(items) if isinstance(item, dict) and domain.matches(target.selector, item)]
    if not chosen:
        if op == "remove":
            return  # already absent: PATCH is idempotent
        selector = target.selector
        if op == "add" and isinstance(selector, domain.Compare) and selector.op == "eq" and not selector.path.sub:
            # Entra ID adds `emails[type eq "work"].value` to a user without a work e-mail.
            element = {selector.path.attribute: selector.value}
            element.update({target.sub: value} if target.sub else (value if isinstance(value, dict) else {}))
            container[attr.name] = items + [_single(attr, element)]
            return
        raise ScimError(400, f"no {attr.name} element matches the filter", "noTarget")
    sub = attr.sub(target.sub) if target.sub else None
    if target.sub and sub is None:
        raise ScimError(400, f"unknown attribute {attr.name}.{target.sub}", "invalidPath")
    for i in reversed(chosen):
        if op == "remove" and sub is None:
            del items[i]
        elif op == "remove" and sub is not None:
            items[i].pop(sub.name, None)
        elif sub is not None:
            items[i][sub.name] = _single(sub, value)
        else:
            items[i] = {**items[i], **_single(attr, value)} if op == "add" else _single(attr, value)
    container[attr.name] = items


# --- discovery documents (RFC 7644 section 4) ----------------------------------------------------

def service_provider_config(base: str) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [{
            "type": "oauthbearertoken", "name": "Bearer token", "primary": True,
            "description": "A per-tenant token issued by POST /v1/admin/scim-tokens",
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base}/ServiceProviderConfig"},
    }


def resource_types(base: str) -> list[dict[str, Any]]:
    return [
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"], "id": "User", "name": "User",
         "endpoint": "/Users", "description": "Employees", "schema": USER,
         "schemaExtensions": [{"schema": ENTERPRISE, "required": False}],
         "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/User"}},
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"], "id": "Group", "name": "Group",
         "endpoint": "/Groups", "description": "Ambassador groups (communities) for targeting", "schema": GROUP,
         "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/Group"}},
    ]


def schemas(base: str) -> list[dict[str, Any]]:
    described = ((USER, "User", "Employee", USER_ATTRIBUTES + COMMON),
                 (ENTERPRISE, "EnterpriseUser", "Enterprise user", ENTERPRISE_ATTRIBUTES),
                 (GROUP, "Group", "Group", GROUP_ATTRIBUTES + COMMON))
    return [{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"], "id": urn, "name": name,
             "description": description, "attributes": [_describe(a) for a in attributes],
             "meta": {"resourceType": "Schema", "location": f"{base}/Schemas/{urn}"}}
            for urn, name, description, attributes in described]


def _describe(attr: Attr) -> dict[str, Any]:
    described: dict[str, Any] = {
        "name": attr.name, "type": attr.type, "multiValued": attr.multi, "description": attr.description,
        "required": attr.required, "caseExact": attr.case_exact, "mutability": attr.mutability,
        "returned": attr.returned, "uniqueness": attr.uniqueness,
    }
    if attr.subs:
        described["subAttributes"] = [_describe(s) for s in attr.subs]
    if attr.type == "reference":
        described["referenceTypes"] = list(attr.reference_types)
    if attr.canonical_values:
        described["canonicalValues"] = list(attr.canonical_values)
    return described
