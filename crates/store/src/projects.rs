//! The `projects` table.
//!
//! Visibility is part of every statement (`owner_id = caller OR admin`), so a
//! project the caller may not see behaves exactly like one that does not
//! exist, and no read-then-check race is possible. The admin rights a token
//! claims are confirmed against `users` inside the same statement, so that a
//! demoted admin loses them at once without an extra round trip. Lists page by keyset: each
//! (scope, sort, status, first-or-next) shape is its own statement whose
//! `WHERE` and `ORDER BY` match one of the V1 indexes, so that a page costs
//! the same whatever its depth.

use std::sync::LazyLock;

use projects_domain::inputs::{NewProject, ProjectPatch};
use projects_domain::{
    Project, ProjectAccess, ProjectId, ProjectKey, ProjectListQuery, ProjectScope, ProjectSort,
    ProjectStatus, ProjectView, Slice, UserId,
};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::columns::{Instant, Status, Text};
use crate::idempotency::{COMPLETE, IdempotencyKey, StoredResponse, response_columns};
use crate::statement::Sql;
use crate::{Store, StoreError};

/// The projects repository.
#[derive(Debug, Clone, Copy)]
pub struct Projects<'a> {
    store: &'a Store,
}

/// What an update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectUpdate {
    /// The project as it is now.
    Applied(Project),
    /// The project exists and is visible, but its version is not one the
    /// caller expected: nothing was changed.
    Stale { current_version: i32 },
}

/// Which plan `explain_list` shows.
#[cfg(feature = "test-support")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanKind {
    /// The plan for these very parameter values (what PostgreSQL uses for
    /// the first executions of a prepared statement).
    Custom,
    /// The parameter-independent plan that PostgreSQL may switch a cached
    /// prepared statement to after a few executions.
    Generic,
}

/// The admin rights a token claims, confirmed against `users` by the
/// statement itself: `$caller` is the caller's id parameter.
macro_rules! confirmed_admin {
    ($caller:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM users WHERE id = ",
            $caller,
            " AND role = 'admin')"
        )
    };
}

/// Who may see a project, and so read, change or delete it: its owner, or
/// an admin. `$2` is the caller, `$3` whether their token claims admin
/// rights. Every statement on one project puts its id in `$1` and this
/// after it.
macro_rules! visible_to_caller {
    () => {
        concat!("(owner_id = $2 OR ($3 AND ", confirmed_admin!("$2"), "))")
    };
}

/// The columns a `Project` is read from (`ProjectRow::view`, by position:
/// keep the order): one list for every statement that returns a project.
macro_rules! project_columns {
    () => {
        "id, owner_id, name, description, status, version, created_at, updated_at"
    };
}

const COLUMNS: &str = project_columns!();

/// The text parameters are cast to `text`: the columns are domains (V6),
/// and a parameter inferred as a domain type would not take a Rust string;
/// the domain's rules apply when the value enters the column. Only what the
/// database decides comes back: the rest of the project is what was sent.
const INSERT: Sql = Sql::new(
    "projects.insert",
    "INSERT INTO projects (id, owner_id, name, description, status) \
     VALUES ($1, $2, $3::text, $4::text, $5::text) \
     RETURNING version, created_at, updated_at",
);
const FIND: Sql = Sql::new(
    "projects.find",
    concat!(
        "SELECT ",
        project_columns!(),
        " FROM projects WHERE id = $1 AND ",
        visible_to_caller!()
    ),
);
/// `$5` says whether the description is sent at all (`$6` may be NULL to
/// clear it); `$8` lists the versions an `If-Match` accepts (NULL: any).
const UPDATE: Sql = Sql::new(
    "projects.update",
    concat!(
        "UPDATE projects SET name = COALESCE($4, name), \
         description = CASE WHEN $5 THEN $6 ELSE description END, \
         status = COALESCE($7, status) \
         WHERE id = $1 AND ",
        visible_to_caller!(),
        " AND ($8::int4[] IS NULL OR version = ANY($8)) RETURNING ",
        project_columns!()
    ),
);
const CURRENT_VERSION: Sql = Sql::new(
    "projects.current_version",
    concat!(
        "SELECT version FROM projects WHERE id = $1 AND ",
        visible_to_caller!()
    ),
);
const DELETE: Sql = Sql::new(
    "projects.delete",
    concat!(
        "DELETE FROM projects WHERE id = $1 AND ",
        visible_to_caller!()
    ),
);

/// The statement of each list shape. A shape is whether the caller's admin
/// rights must be confirmed (any list but their own), the scope (one owner
/// or all), the sort, whether a status is filtered and whether the page
/// starts after a cursor; each gets a text without optional clauses, so
/// that the planner sees a plain index range scan in every case.
static LIST: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut statements = Vec::with_capacity(64);
    for admin in [false, true] {
        for all in [false, true] {
            for sort in ProjectSort::ALL {
                for status in [false, true] {
                    for after in [false, true] {
                        statements.push(list_sql(admin, all, sort, status, after));
                    }
                }
            }
        }
    }
    statements
});

fn shape_index(admin: bool, all: bool, sort: ProjectSort, status: bool, after: bool) -> usize {
    let sort_index = ProjectSort::ALL
        .iter()
        .position(|candidate| *candidate == sort)
        .unwrap_or_default();
    usize::from(admin) * 32
        + usize::from(all) * 16
        + sort_index * 4
        + usize::from(status) * 2
        + usize::from(after)
}

fn list_sql(admin: bool, all: bool, sort: ProjectSort, status: bool, after: bool) -> String {
    let mut conditions = Vec::new();
    let mut next = 0;
    let mut param = || {
        next += 1;
        format!("${next}")
    };
    if admin {
        // Evaluated once per statement (an InitPlan): the admin rights a
        // token claims, confirmed by the database in the same statement.
        conditions.push(format!(confirmed_admin!("{}"), param()));
    }
    if !all {
        conditions.push(format!("owner_id = {}", param()));
    }
    if status {
        conditions.push(format!("status = {}", param()));
    }
    let (column, cast) = if sort.by_name() {
        ("name", "text")
    } else {
        ("created_at", "timestamptz")
    };
    let (comparison, direction) = if sort.descending() {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if after {
        let key = param();
        let id = param();
        // A row comparison that matches the index column order: PostgreSQL
        // turns it into one index range condition.
        conditions.push(format!(
            "({column}, id) {comparison} ({key}::{cast}, {id}::uuid)"
        ));
    }
    let limit = param();
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    format!(
        "SELECT {COLUMNS} FROM projects{filter} \
         ORDER BY {column} {direction}, id {direction} LIMIT {limit}"
    )
}

impl Store {
    pub fn projects(&self) -> Projects<'_> {
        Projects { store: self }
    }
}

impl Projects<'_> {
    /// Inserts a project owned by `owner`.
    pub async fn create(&self, owner: UserId, project: &NewProject) -> Result<Project, StoreError> {
        let id = ProjectId::new();
        let client = self.store.client().await?;
        let row = self
            .store
            .slow
            .query_one(
                &client,
                &INSERT,
                &[
                    id.as_uuid(),
                    owner.as_uuid(),
                    &project.name,
                    &project.description,
                    &project.status.as_str(),
                ],
            )
            .await?;
        inserted(id, owner, project, &row)
    }

    /// Inserts a project owned by `key.user` and, in the same transaction,
    /// stores the response `render` makes of it under the idempotency key
    /// claimed for this request: either both happen or neither does.
    pub async fn create_idempotent(
        &self,
        key: IdempotencyKey<'_>,
        project: &NewProject,
        render: impl FnOnce(&Project) -> StoredResponse,
    ) -> Result<(Project, StoredResponse), StoreError> {
        let id = ProjectId::new();
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        let row = self
            .store
            .slow
            .query_one(
                &tx,
                &INSERT,
                &[
                    id.as_uuid(),
                    key.user.as_uuid(),
                    &project.name,
                    &project.description,
                    &project.status.as_str(),
                ],
            )
            .await?;
        let project = inserted(id, key.user, project, &row)?;
        let response = render(&project);
        let (status, names, values) = response_columns(&response);
        let stored = self
            .store
            .slow
            .execute(
                &tx,
                &COMPLETE,
                &[
                    key.user.as_uuid(),
                    &key.key,
                    &status,
                    &names,
                    &values,
                    &response.body,
                    &key.claim,
                ],
            )
            .await?;
        if stored != 1 {
            // The claim was taken over (this request outlived its lease):
            // the other request answers for the key.
            return Err(StoreError::Conflict {
                constraint: Some("idempotency_keys_pkey".into()),
            });
        }
        tx.commit().await?;
        Ok((project, response))
    }

    /// The project, if `access` may see it.
    pub async fn find(&self, access: ProjectAccess, id: ProjectId) -> Result<Project, StoreError> {
        self.find_row(access, id).await?.to_project()
    }

    /// The same project as its row, to be read in place (its JSON written
    /// without copying its text first).
    pub async fn find_row(
        &self,
        access: ProjectAccess,
        id: ProjectId,
    ) -> Result<ProjectRow, StoreError> {
        // A read by primary key: it may share a connection with the other
        // reads of this worker in flight (`shared_reads`).
        let reader = self.store.reader().await?;
        let row = self
            .store
            .slow
            .query_one(
                &reader,
                &FIND,
                &[id.as_uuid(), access.caller.as_uuid(), &access.admin],
            )
            .await?;
        Ok(ProjectRow(row))
    }

    /// Applies `patch` if `access` may see the project and, when
    /// `expected_versions` is given, its version is one of them.
    ///
    /// One `UPDATE` does the visibility check, the version check and the
    /// write; only when it touches no row does a second statement, in the
    /// same transaction, tell a missing project from a stale one. An empty
    /// patch writes nothing (and so keeps the version).
    pub async fn update(
        &self,
        access: ProjectAccess,
        id: ProjectId,
        patch: &ProjectPatch,
        expected_versions: Option<&[i32]>,
    ) -> Result<ProjectUpdate, StoreError> {
        let visibility: [&(dyn ToSql + Sync); 3] =
            [id.as_uuid(), access.caller.as_uuid(), &access.admin];
        if patch.is_empty() {
            let client = self.store.client().await?;
            let row = self
                .store
                .slow
                .query_one(&client, &FIND, &visibility)
                .await?;
            let project = project_from_row(row)?;
            return Ok(match expected_versions {
                Some(versions) if !versions.contains(&project.version) => ProjectUpdate::Stale {
                    current_version: project.version,
                },
                _ => ProjectUpdate::Applied(project),
            });
        }
        // No transaction: at READ COMMITTED the version lookup after a miss
        // would see a fresh snapshot inside one as well, and versions only
        // grow, so a miss followed by the lookup answers what a transaction
        // would, with one round trip (the UPDATE) on the usual path instead
        // of three.
        let client = self.store.client().await?;
        let description = patch.description.as_ref().and_then(Option::as_deref);
        let status = patch.status.map(ProjectStatus::as_str);
        let versions: Option<Vec<i32>> = expected_versions.map(<[i32]>::to_vec);
        let row = self
            .store
            .slow
            .query_opt(
                &client,
                &UPDATE,
                &[
                    id.as_uuid(),
                    access.caller.as_uuid(),
                    &access.admin,
                    &patch.name,
                    &patch.description.is_some(),
                    &description,
                    &status,
                    &versions,
                ],
            )
            .await?;
        let outcome = match row {
            Some(row) => ProjectUpdate::Applied(project_from_row(row)?),
            None => {
                let current = self
                    .store
                    .slow
                    .query_opt(&client, &CURRENT_VERSION, &visibility)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                ProjectUpdate::Stale {
                    current_version: current.try_get(0)?,
                }
            }
        };
        Ok(outcome)
    }

    /// Deletes the project if `access` may see it.
    pub async fn delete(&self, access: ProjectAccess, id: ProjectId) -> Result<(), StoreError> {
        let client = self.store.client().await?;
        match self
            .store
            .slow
            .execute(
                &client,
                &DELETE,
                &[id.as_uuid(), access.caller.as_uuid(), &access.admin],
            )
            .await?
        {
            0 => Err(StoreError::NotFound),
            _ => Ok(()),
        }
    }

    /// One page of `query`, starting after `after` (the first page if
    /// `None`), with the key to continue from if more rows follow. The
    /// caller must have checked that `after` fits `query.sort`. Any list
    /// but the caller's own is empty unless the database confirms that the
    /// caller is an admin.
    pub async fn list(
        &self,
        access: ProjectAccess,
        query: &ProjectListQuery,
        after: Option<&ProjectKey>,
    ) -> Result<Slice<ProjectRow, ProjectKey>, StoreError> {
        let (sql, params) = ListStatement::new(access, query, after);
        let client = self.store.client().await?;
        let rows = self.store.slow.query(&client, &sql, &params.refs()).await?;
        // One row more than the page was asked for: proof that a next page
        // exists, without a COUNT. Only the last row kept is read here; the
        // others are read when they are written.
        let Slice { items, next } = Slice::from_overfetch(
            rows.into_iter().map(ProjectRow).collect(),
            usize::from(query.limit.get()),
            |last: &ProjectRow| last.view().map(|view| query.sort.key_of(view)),
        );
        Ok(Slice {
            items,
            next: next.transpose()?,
        })
    }

    /// The plan PostgreSQL chooses for the list statement of `query`, as
    /// `EXPLAIN` text: for the tests (every list shape must be served by an
    /// index), behind the `test-support` feature.
    #[cfg(feature = "test-support")]
    pub async fn explain_list(
        &self,
        access: ProjectAccess,
        query: &ProjectListQuery,
        after: Option<&ProjectKey>,
        kind: PlanKind,
    ) -> Result<String, StoreError> {
        let (sql, params) = ListStatement::new(access, query, after);
        let mut client = self.store.client().await?;
        let transaction = client.transaction().await?;
        let mode = match kind {
            PlanKind::Custom => "force_custom_plan",
            PlanKind::Generic => "force_generic_plan",
        };
        transaction
            .batch_execute(&format!("SET LOCAL plan_cache_mode = {mode}"))
            .await?;
        let rows = match kind {
            PlanKind::Custom => {
                transaction
                    .query(&format!("EXPLAIN {}", sql.text), &params.refs())
                    .await?
            }
            PlanKind::Generic => {
                // A named prepared statement planned without its values,
                // then explained with them: the plan a long-lived pooled
                // connection may settle on.
                let types = params.type_names().join(", ");
                transaction
                    .batch_execute(&format!("PREPARE explained_list ({types}) AS {}", sql.text))
                    .await?;
                let rows = transaction
                    .query(
                        &format!("EXPLAIN EXECUTE explained_list({})", params.literals()),
                        &[],
                    )
                    .await?;
                // A rolled-back transaction does not deallocate a PREPARE;
                // done inside it, so that behind a pooler it reaches the
                // server connection that has the statement.
                transaction
                    .batch_execute("DEALLOCATE explained_list")
                    .await?;
                rows
            }
        };
        transaction.rollback().await?;
        let lines = rows
            .iter()
            .map(|row| row.try_get::<_, String>(0))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(lines.join("\n"))
    }
}

/// One parameter of a list statement, kept typed for the real query and
/// printable for `explain_list`'s `EXECUTE`.
#[derive(Debug)]
enum ListParam {
    Uuid(uuid::Uuid),
    Text(String),
    Time(projects_domain::Timestamp),
    Int(i64),
}

#[derive(Debug)]
struct ListParams(Vec<ListParam>);

impl ListParams {
    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0
            .iter()
            .map(|param| -> &(dyn ToSql + Sync) {
                match param {
                    ListParam::Uuid(value) => value,
                    ListParam::Text(value) => value,
                    ListParam::Time(value) => value,
                    ListParam::Int(value) => value,
                }
            })
            .collect()
    }

    #[cfg(feature = "test-support")]
    fn type_names(&self) -> Vec<&'static str> {
        self.0
            .iter()
            .map(|param| match param {
                ListParam::Uuid(_) => "uuid",
                ListParam::Text(_) => "text",
                ListParam::Time(_) => "timestamptz",
                ListParam::Int(_) => "int8",
            })
            .collect()
    }

    #[cfg(feature = "test-support")]
    fn literals(&self) -> String {
        self.0
            .iter()
            .map(|param| match param {
                ListParam::Uuid(value) => format!("'{value}'"),
                ListParam::Text(value) => format!("'{}'", value.replace('\'', "''")),
                ListParam::Time(value) => format!(
                    "'{}'",
                    value
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                ),
                ListParam::Int(value) => value.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

struct ListStatement;

impl ListStatement {
    /// The statement of `query`'s shape and its parameters, in the order
    /// `list_sql` numbers them.
    #[expect(clippy::new_ret_no_self, reason = "builds the pair a list query runs")]
    fn new(
        access: ProjectAccess,
        query: &ProjectListQuery,
        after: Option<&ProjectKey>,
    ) -> (Sql, ListParams) {
        let all = query.scope == ProjectScope::All;
        let admin = query.scope != ProjectScope::Owner(access.caller);
        let index = shape_index(
            admin,
            all,
            query.sort,
            query.status.is_some(),
            after.is_some(),
        );
        let sql = Sql::new("projects.list", LIST[index].as_str());
        let mut params = Vec::with_capacity(6);
        if admin {
            params.push(ListParam::Uuid(*access.caller.as_uuid()));
        }
        if let ProjectScope::Owner(owner) = query.scope {
            params.push(ListParam::Uuid(*owner.as_uuid()));
        }
        if let Some(status) = query.status {
            params.push(ListParam::Text(status.as_str().to_owned()));
        }
        match after {
            Some(ProjectKey::CreatedAt { created_at, id }) => {
                params.push(ListParam::Time(*created_at));
                params.push(ListParam::Uuid(*id.as_uuid()));
            }
            Some(ProjectKey::Name { name, id }) => {
                params.push(ListParam::Text(name.clone()));
                params.push(ListParam::Uuid(*id.as_uuid()));
            }
            None => {}
        }
        params.push(ListParam::Int(i64::from(query.limit.get()) + 1));
        (sql, ListParams(params))
    }
}

/// A project as the database sent it: a row of `COLUMNS`, read in place
/// when it is used, so that a page's JSON is written from the rows without
/// copying each name and description into a `Project` first.
#[derive(Debug)]
pub struct ProjectRow(Row);

impl ProjectRow {
    /// The project, borrowed from the row; read by position (a name lookup
    /// per field was a visible share of a 20-row list).
    pub fn view(&self) -> Result<ProjectView<'_>, StoreError> {
        let row = &self.0;
        Ok(ProjectView {
            id: ProjectId::from_uuid(row.try_get(0)?),
            owner_id: UserId::from_uuid(row.try_get(1)?),
            name: row.try_get::<_, Text<'_>>(2)?.0,
            description: row.try_get::<_, Option<Text<'_>>>(3)?.map(|text| text.0),
            status: row.try_get::<_, Status>(4)?.0,
            version: row.try_get(5)?,
            created_at: row.try_get::<_, Instant>(6)?.0,
            updated_at: row.try_get::<_, Instant>(7)?.0,
        })
    }

    /// The project, owned.
    pub fn to_project(&self) -> Result<Project, StoreError> {
        Ok(self.view()?.to_project())
    }
}

/// A row of `COLUMNS` as an owned `Project`.
pub(crate) fn project_from_row(row: Row) -> Result<Project, StoreError> {
    ProjectRow(row).to_project()
}

/// The project `INSERT` made of `project`: what the statement was given,
/// and what only the database knows (`RETURNING version, created_at,
/// updated_at`), so that the text columns do not travel back.
fn inserted(
    id: ProjectId,
    owner: UserId,
    project: &NewProject,
    row: &Row,
) -> Result<Project, StoreError> {
    Ok(Project {
        id,
        owner_id: owner,
        name: project.name.clone().unwrap_or_default(),
        description: project.description.clone(),
        status: project.status,
        version: row.try_get(0)?,
        created_at: row.try_get::<_, Instant>(1)?.0,
        updated_at: row.try_get::<_, Instant>(2)?.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_has_its_own_statement() {
        assert_eq!(LIST.len(), 64);
        let mut seen = std::collections::HashSet::new();
        for admin in [false, true] {
            for all in [false, true] {
                for sort in ProjectSort::ALL {
                    for status in [false, true] {
                        for after in [false, true] {
                            let index = shape_index(admin, all, sort, status, after);
                            assert!(seen.insert(index));
                            assert_eq!(LIST[index], list_sql(admin, all, sort, status, after));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn keyset_conditions_follow_the_sort() {
        assert_eq!(
            list_sql(false, false, ProjectSort::CreatedAtDesc, true, true),
            format!(
                "SELECT {COLUMNS} FROM projects WHERE owner_id = $1 AND status = $2 AND \
                 (created_at, id) < ($3::timestamptz, $4::uuid) \
                 ORDER BY created_at DESC, id DESC LIMIT $5"
            )
        );
        assert_eq!(
            list_sql(true, true, ProjectSort::NameAsc, false, false),
            format!(
                "SELECT {COLUMNS} FROM projects \
                 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1 AND role = 'admin') \
                 ORDER BY name ASC, id ASC LIMIT $2"
            )
        );
    }
}
