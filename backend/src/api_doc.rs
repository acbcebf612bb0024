//! The OpenAPI document. The route annotations say what is particular to each route
//! (its body, its success answers, the errors only it gives); [`complete`] adds what
//! holds for every route by rule, so 80 handlers do not each repeat it: unique
//! operation ids, the error answers an extractor or layer can give (401 on
//! authenticated routes, 415/422 on body routes, ...), and response descriptions.

use utoipa::{
    Modify, OpenApi,
    openapi::{
        self, HttpMethod,
        path::Operation,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use crate::error;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Mocheong API",
        description = "Wedding invitation platform backend. Conventions (naming, errors, \
            languages, lists): docs/api.md."
    ),
    modifiers(&BearerAuth),
    components(schemas(error::ErrorBody))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
    }
}

/// Applies the document-wide rules to the merged document of every router.
pub fn complete(doc: &mut openapi::OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        for (_, op) in operations_mut(item) {
            unique_operation_id(path, op);
        }
    }
}

fn operations_mut(item: &mut openapi::PathItem) -> Vec<(HttpMethod, &mut Operation)> {
    [
        (HttpMethod::Get, item.get.as_mut()),
        (HttpMethod::Put, item.put.as_mut()),
        (HttpMethod::Post, item.post.as_mut()),
        (HttpMethod::Delete, item.delete.as_mut()),
        (HttpMethod::Patch, item.patch.as_mut()),
        (HttpMethod::Head, item.head.as_mut()),
        (HttpMethod::Options, item.options.as_mut()),
        (HttpMethod::Trace, item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
    .collect()
}

/// Handler names repeat between the user and the admin API (`list_pages` twice):
/// admin operations are `admin_<handler>`, so generated clients get one name each.
fn unique_operation_id(path: &str, op: &mut Operation) {
    if path.starts_with("/api/admin/")
        && let Some(id) = op.operation_id.as_mut()
        && !id.starts_with("admin_")
    {
        id.insert_str(0, "admin_");
    }
}
