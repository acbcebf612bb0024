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
