//! The served OpenAPI document is one a client generator can use: every reference
//! resolves, operation ids are unique. (scripts/openapi-check.sh also runs
//! openapi-spec-validator on it and compiles generated TypeScript types.)

use std::collections::BTreeMap;

use serde_json::Value;

use crate::common::TestApp;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// `(path, method, operation)` of every operation.
fn operations(doc: &Value) -> Vec<(String, &'static str, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push((path.clone(), method, op));
            }
        }
    }
    out
}

fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r);
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

async fn served() -> Value {
    let app = TestApp::spawn().await;
    let doc = app.get("/api/openapi.json", None, 200).await;
    assert_eq!(
        doc,
        serde_json::to_value(backend::openapi()).unwrap(),
        "`backend openapi` prints the served document"
    );
    doc
}

#[tokio::test]
async fn every_reference_in_the_openapi_document_resolves() {
    let doc = served().await;
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for r in found {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{r} is not local"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not exist");
    }
}

#[tokio::test]
async fn operation_ids_are_unique() {
    let doc = served().await;
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (path, method, op) in operations(&doc) {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        if let Some(other) = seen.insert(id.to_owned(), format!("{method} {path}")) {
            panic!("operationId {id} is used by {other} and {method} {path}");
        }
    }
    assert_eq!(seen["list_pages"], "get /api/pages");
    assert_eq!(seen["admin_list_pages"], "get /api/admin/pages");
}

/// The status codes an operation documents.
fn statuses(op: &Value) -> Vec<&str> {
    op["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

#[tokio::test]
async fn every_operation_documents_the_errors_it_can_answer() {
    let doc = served().await;
    for (path, method, op) in operations(&doc) {
        let has = statuses(op);
        let name = format!("{method} {path}");
        assert!(has.contains(&"500"), "{name}: {has:?}");
        if op["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()))
        {
            assert!(has.contains(&"401"), "{name} needs a token: {has:?}");
        }
        if op.get("requestBody").is_some() {
            for status in ["413", "415", "422"] {
                assert!(has.contains(&status), "{name} takes a body: {has:?}");
            }
        }
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        if params.iter().any(|p| p["in"] == "path") {
            assert!(has.contains(&"404"), "{name}: {has:?}");
        }
        if params.iter().any(|p| p["in"] == "query") {
            assert!(has.contains(&"422"), "{name}: {has:?}");
        }
        for (status, answer) in op["responses"].as_object().unwrap() {
            let answer = match answer["$ref"].as_str() {
                Some(r) => doc.pointer(r.strip_prefix('#').unwrap()).unwrap(),
                None => answer,
            };
            assert!(
                answer["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{name} {status} has no description"
            );
            if status.starts_with('4') {
                assert_eq!(
                    answer["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{name} {status}"
                );
            }
        }
    }
    let login = &doc["paths"]["/api/auth/login"]["post"];
    assert!(statuses(login).contains(&"429"));
    let limited = doc.pointer("/components/responses/RateLimited").unwrap();
    assert!(limited["headers"].get("Retry-After").is_some());
}

#[tokio::test]
async fn constraints_match_validation() {
    let doc = served().await;
    let per_page = doc["paths"]["/api/pages"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "perPage")
        .expect("perPage");
    assert_eq!(per_page["schema"]["minimum"], 1);
    assert_eq!(per_page["schema"]["maximum"], 100);
    let schemas = &doc["components"]["schemas"];
    let register = &schemas["RegisterIn"]["properties"];
    assert_eq!(register["password"]["minLength"], 8);
    assert_eq!(register["password"]["maxLength"], 128);
    assert_eq!(register["email"]["format"], "email");
    assert_eq!(schemas["Venue"]["properties"]["lat"]["maximum"], 90.0);
    assert_eq!(schemas["PageIn"]["properties"]["slug"]["maxLength"], 40);
    assert_eq!(
        schemas["OpenRsvpIn"]["properties"]["partySize"]["maximum"],
        10
    );
    assert_eq!(
        schemas["PageStatus"]["enum"],
        serde_json::json!(["draft", "published", "archived"])
    );
    for name in ["RegisterIn", "LoginIn", "PageIn", "RsvpIn", "EntryIn"] {
        assert!(
            schemas[name].get("example").is_some(),
            "{name} has an example"
        );
    }
}
