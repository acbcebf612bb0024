//! Offset pagination shared by list endpoints: `?page=1&perPage=20`.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

#[derive(Debug, Clone, Copy, Deserialize, Validate, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1-based page number.
    #[validate(range(min = 1, max = 100_000))]
    #[param(minimum = 1, maximum = 100_000)]
    #[serde(default = "first_page")]
    pub page: u64,
    /// Items per page, 1–100.
    #[validate(range(min = 1, max = 100))]
    #[param(minimum = 1, maximum = 100)]
    #[serde(default = "default_per_page")]
    pub per_page: u64,
}

fn first_page() -> u64 {
    1
}

fn default_per_page() -> u64 {
    20
}

impl PageParams {
    pub fn offset(&self) -> u64 {
        (self.page - 1) * self.per_page
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Paginated<T> {
    pub items: Vec<T>,
    pub page: u64,
    pub per_page: u64,
    pub total: u64,
}

/// One page of `query` (already filtered and ordered) with the total count, each row
/// turned into its DTO by `map`. Validates the paging parameters (422).
pub async fn paginate<E, T>(
    db: &sea_orm::DatabaseConnection,
    query: sea_orm::Select<E>,
    params: PageParams,
    map: impl FnMut(E::Model) -> T,
) -> crate::error::Result<Paginated<T>>
where
    E: sea_orm::EntityTrait,
    E::Model: Sync,
{
    use sea_orm::{PaginatorTrait, QuerySelect};
    params
        .validate()
        .map_err(crate::extract::validation_error)?;
    let total = query.clone().count(db).await?;
    let items = query
        .offset(params.offset())
        .limit(params.per_page)
        .all(db)
        .await?
        .into_iter()
        .map(map)
        .collect();
    Ok(Paginated {
        items,
        page: params.page,
        per_page: params.per_page,
        total,
    })
}
