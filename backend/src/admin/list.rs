//! What every admin list shares: paging, `sort`/`order` over a whitelist of fields,
//! a refusal (422) of query parameters the list does not know — so a typo or an
//! unsupported filter never silently returns everything — and escaped,
//! case-insensitive substring search that behaves the same on SQLite and PostgreSQL.

use axum::{extract::FromRequestParts, http::request::Parts};
use sea_orm::{
    ColumnTrait, EntityTrait, Order, QueryOrder, Select,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};
use serde::{Deserialize, de::DeserializeOwned};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::{
    error::Error,
    extract::{Query, validation_error},
    pagination::PageParams,
};

/// The filters of one admin list.
pub trait Filters: DeserializeOwned + Validate {
    /// The query parameters the filters read (as sent, camelCase).
    const FIELDS: &'static [&'static str];
    /// The fields `sort` accepts (camelCase), the default first.
    const SORTS: &'static [&'static str];
}

/// `asc` or `desc` (the default).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    Asc,
    #[default]
    Desc,
}

impl From<SortOrder> for Order {
    fn from(o: SortOrder) -> Self {
        match o {
            SortOrder::Asc => Order::Asc,
            SortOrder::Desc => Order::Desc,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SortParams {
    /// A field of this list's whitelist (see each list); the list's default when absent.
    pub sort: Option<String>,
    /// `asc` or `desc` (default).
    #[param(inline)]
    pub order: Option<SortOrder>,
}

/// The parsed query of an admin list.
pub struct ListQuery<F> {
    pub filters: F,
    pub paging: PageParams,
    /// One of `F::SORTS`.
    pub sort: &'static str,
    pub order: SortOrder,
}

const COMMON: &[&str] = &["page", "perPage", "sort", "order"];

impl<F: Filters, S: Send + Sync> FromRequestParts<S> for ListQuery<F> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        let uri = &parts.uri;
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)?;
        if let Some((key, _)) = pairs
            .iter()
            .find(|(k, _)| !F::FIELDS.contains(&k.as_str()) && !COMMON.contains(&k.as_str()))
        {
            let mut known: Vec<&str> = F::FIELDS.to_vec();
            known.extend_from_slice(COMMON);
            return Err(Error::validation(
                key.clone(),
                format!(
                    "unknown query parameter `{key}`; this list takes {}",
                    known.join(", ")
                ),
            ));
        }
        let Query(filters) = Query::<F>::try_from_uri(uri)?;
        filters.validate().map_err(validation_error)?;
        let Query(paging) = Query::<PageParams>::try_from_uri(uri)?;
        let Query(sorting) = Query::<SortParams>::try_from_uri(uri)?;
        let sort = match sorting.sort.as_deref() {
            None | Some("") => F::SORTS[0],
            Some(name) => F::SORTS
                .iter()
                .copied()
                .find(|s| *s == name)
                .ok_or_else(|| {
                    Error::validation(
                        "sort",
                        format!("cannot sort by `{name}`; sortable: {}", F::SORTS.join(", ")),
                    )
                })?,
        };
        Ok(ListQuery {
            filters,
            paging,
            sort,
            order: sorting.order.unwrap_or_default(),
        })
    }
}

/// Orders `query` by `column` and then by id (ULIDs: creation order), so that equal
/// values page stably.
pub fn sorted<E: EntityTrait>(
    query: Select<E>,
    column: E::Column,
    id: E::Column,
    order: SortOrder,
) -> Select<E> {
    query
        .order_by(column, order.into())
        .order_by(id, order.into())
}

/// `column` contains `needle`, ignoring case, with `%`, `_` and `\` taken literally.
pub fn contains<C: ColumnTrait>(column: C, needle: &str) -> Expr {
    let escaped = needle
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    Expr::expr(Func::lower(Expr::col(column)))
        .like(LikeExpr::new(format!("%{escaped}%")).escape('\\'))
}
