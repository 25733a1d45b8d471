//! Export of audit entries as FHIR R4 `AuditEvent` resources and `Bundle`s.
//!
//! Mapping of one entry:
//!
//! | entry | AuditEvent |
//! |---|---|
//! | `seq` | `id` = `audit-{seq}` |
//! | `action` prefix `auth.` | `type` = DICOM DCM 110114 User Authentication |
//! | `action` prefix `access.` | `type` = DICOM DCM 110110 Patient Record |
//! | any other `action` | `type` = `rest` of the FHIR audit-event-type code system |
//! | `action` | `subtype` = the dotted action in the local code system [`ACTION_SYSTEM`] |
//! | last segment of `action` | `action` = C, R, U, D or E (see [`action_code`]) |
//! | `at_ms` | `recorded`, an instant in UTC with milliseconds |
//! | `outcome` | `outcome` = 0 success, 4 denied (minor failure), 8 failure (serious) |
//! | `actor`, `actor_role`, `source` | `agent[0]` `who.identifier`, `role.text`, `network` |
//! | `subject`, `target` | `entity[]` with `what.identifier` |
//! | `detail` | `entity[].detail` `valueString` with the canonical JSON |
//! | `hash` | extension [`HASH_EXTENSION`] with 64 hex digits |

use serde_json::{json, Value};

use crate::entry::{canonical_json, AuditEntry, Outcome};

/// Local code system of the dotted action names.
pub const ACTION_SYSTEM: &str = "urn:medtunnel:audit-action";
/// Identifier system of actors (`user:alice`, `gateway`, `device:...`).
pub const ACTOR_SYSTEM: &str = "urn:medtunnel:actor";
/// Identifier system of subjects (patients and devices).
pub const SUBJECT_SYSTEM: &str = "urn:medtunnel:subject";
/// Identifier system of targets (command ids and similar).
pub const TARGET_SYSTEM: &str = "urn:medtunnel:target";
/// Extension that carries the entry's chain hash.
pub const HASH_EXTENSION: &str = "urn:medtunnel:audit-chain-hash";

const AUDIT_EVENT_TYPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const DICOM_SYSTEM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const SOURCE_TYPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";

/// Converts one entry to a FHIR R4 `AuditEvent` resource.
pub fn to_fhir_audit_event(entry: &AuditEntry) -> Value {
    let mut event = json!({
        "resourceType": "AuditEvent",
        "id": format!("audit-{}", entry.seq),
        "extension": [{ "url": HASH_EXTENSION, "valueString": hex::encode(entry.hash) }],
        "type": event_type(&entry.action),
        "subtype": [{ "system": ACTION_SYSTEM, "code": entry.action }],
        "action": action_code(&entry.action),
        "recorded": fhir_instant(entry.at_ms),
        "outcome": outcome_code(entry.outcome),
        "agent": [agent(entry)],
        "source": {
            "observer": { "display": "medtunnel cloud" },
            "type": [{
                "system": SOURCE_TYPE_SYSTEM,
                "code": "4",
                "display": "Application Server",
            }],
        },
    });
    let entities = entities(entry);
    if !entities.is_empty() {
        event["entity"] = Value::Array(entities);
    }
    if entry.outcome != Outcome::Success {
        event["outcomeDesc"] = Value::String(entry.outcome.as_str().to_owned());
    }
    event
}

/// Converts entries to a FHIR R4 `Bundle` of type `collection`, in the given order.
pub fn to_fhir_bundle(entries: &[AuditEntry]) -> Value {
    let resources: Vec<Value> = entries
        .iter()
        .map(|entry| json!({ "resource": to_fhir_audit_event(entry) }))
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": resources,
    })
}

/// Maps the last segment of a dotted action to the FHIR `AuditEvent.action` code.
///
/// `R` is for read, search, list and export, `C` for create and request, `U` for update,
/// and `D` for delete and erase. Every other action is `E` (execute).
pub fn action_code(action: &str) -> &'static str {
    let verb = action.rsplit('.').next().unwrap_or(action);
    match verb {
        "read" | "search" | "list" | "export" => "R",
        "create" | "request" => "C",
        "update" => "U",
        "delete" | "erase" => "D",
        _ => "E",
    }
}

fn event_type(action: &str) -> Value {
    if action.starts_with("auth.") {
        json!({ "system": DICOM_SYSTEM, "code": "110114", "display": "User Authentication" })
    } else if action.starts_with("access.") {
        json!({ "system": DICOM_SYSTEM, "code": "110110", "display": "Patient Record" })
    } else {
        json!({ "system": AUDIT_EVENT_TYPE_SYSTEM, "code": "rest", "display": "RESTful Operation" })
    }
}

fn outcome_code(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "0",
        Outcome::Denied => "4",
        Outcome::Failure => "8",
    }
}

fn agent(entry: &AuditEntry) -> Value {
    let mut agent = json!({
        "who": { "identifier": { "system": ACTOR_SYSTEM, "value": entry.actor } },
        "requestor": true,
    });
    if let Some(role) = &entry.actor_role {
        agent["role"] = json!([{ "text": role }]);
    }
    if let Some(source) = &entry.source {
        let mut network = json!({ "address": source });
        // Type 2 is "IP Address" in the FHIR network-type code system; other sources,
        // such as connection ids, carry no type.
        if source.parse::<std::net::IpAddr>().is_ok() {
            network["type"] = Value::String("2".to_owned());
        }
        agent["network"] = network;
    }
    agent
}

fn entities(entry: &AuditEntry) -> Vec<Value> {
    let mut entities = Vec::new();
    if let Some(subject) = &entry.subject {
        entities.push(json!({
            "what": { "identifier": { "system": SUBJECT_SYSTEM, "value": subject } },
        }));
    }
    if let Some(target) = &entry.target {
        entities.push(json!({
            "what": { "identifier": { "system": TARGET_SYSTEM, "value": target } },
        }));
    }
    if !entry.detail.is_null() {
        entities.push(json!({
            "description": "event detail",
            "detail": [{ "type": "detail", "valueString": canonical_json(&entry.detail) }],
        }));
    }
    entities
}

/// Formats Unix milliseconds as a FHIR `instant` in UTC, such as
/// `2024-03-01T08:15:00.250Z`.
fn fhir_instant(at_ms: i64) -> String {
    let seconds = at_ms.div_euclid(1000);
    let millis = at_ms.rem_euclid(1000);
    let date_time = medtunnel_records::trace::format_time(seconds).replacen(' ', "T", 1);
    format!("{date_time}.{millis:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_has_milliseconds() {
        assert_eq!(fhir_instant(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(fhir_instant(1_709_280_900_250), "2024-03-01T08:15:00.250Z");
        assert_eq!(fhir_instant(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn action_codes_follow_last_segment() {
        assert_eq!(action_code("access.read"), "R");
        assert_eq!(action_code("command.request"), "C");
        assert_eq!(action_code("consent.update"), "U");
        assert_eq!(action_code("patient.erase"), "D");
        assert_eq!(action_code("command.sign"), "E");
        assert_eq!(action_code("auth.sign_in"), "E");
    }
}
