//! The OpenAPI 3.0 document, built from the route table, and the health check.

use axum::Json;
use serde_json::{json, Map, Value};

use super::{routes, Authentication, Field, RouteMethod};

pub(super) async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub(super) async fn serve_document() -> Json<Value> {
    Json(document())
}

/// Builds the OpenAPI 3.0 description of every route in [`routes`].
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in routes() {
        let method = match route.method {
            RouteMethod::Get => "get",
            RouteMethod::Post => "post",
            RouteMethod::Delete => "delete",
        };
        let mut parameters: Vec<Value> = path_parameters(route.path)
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "integer" } }))
            .collect();
        parameters.extend(route.query.iter().map(|field| {
            json!({ "name": field.name, "in": "query", "required": field.required, "description": field.description, "schema": schema(field) })
        }));
        let mut operation = json!({
            "operationId": route.operation_id,
            "summary": route.summary,
            "parameters": parameters,
            "responses": {
                route.success_status.to_string(): { "description": "Success." },
                "default": {
                    "description": "Error.",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
                },
            },
            "security": match route.authentication {
                Authentication::Anonymous => json!([]),
                Authentication::BearerToken => json!([{ "bearer": [] }]),
            },
        });
        if !route.body.is_empty() {
            operation["requestBody"] = request_body(route.body);
        }
        let entry = paths.entry(route.path).or_insert_with(|| json!({}));
        entry[method] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": { "title": "medtunnel cloud API", "version": env!("CARGO_PKG_VERSION") },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": { "type": "string" },
                                "message": { "type": "string" },
                            },
                        },
                    },
                },
            },
        },
    })
}

fn path_parameters(path: &'static str) -> impl Iterator<Item = &'static str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

fn schema(field: &Field) -> Value {
    if field.kind == "array" {
        json!({ "type": "array", "items": { "type": "string" } })
    } else {
        json!({ "type": field.kind })
    }
}

fn request_body(fields: &[Field]) -> Value {
    let properties: Map<String, Value> = fields
        .iter()
        .map(|field| {
            let mut property = schema(field);
            property["description"] = json!(field.description);
            (field.name.to_owned(), property)
        })
        .collect();
    let required: Vec<&str> = fields
        .iter()
        .filter(|field| field.required)
        .map(|field| field.name)
        .collect();
    json!({
        "required": true,
        "content": { "application/json": { "schema": {
            "type": "object",
            "additionalProperties": false,
            "required": required,
            "properties": properties,
        } } },
    })
}
